"""The embedded mode's file-system broker writes each message whole before a consumer can take it."""

from __future__ import annotations

import os

import pytest
from kombu import Connection
from kombu.transport.virtual import Empty

from config.broker import Transport


@pytest.fixture
def channel(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder), "store_processed": False}
    with Connection("filesystem://", transport=Transport, transport_options=options) as connection:
        yield connection.default_channel, folder


def test_settings_use_the_atomic_transport_with_the_file_broker(settings):
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        assert settings.CELERY_BROKER_TRANSPORT == "config.broker:Transport"


def test_a_message_is_read_back_whole(channel):
    chan, folder = channel
    chan._put("ecm.host_9102", {"body": "x" * 10000})
    assert [name.endswith(".ecm.host_9102.msg") for name in os.listdir(folder)] == [True]
    assert chan._get("ecm.host_9102") == {"body": "x" * 10000}


def test_a_message_being_written_is_not_taken(channel):
    chan, folder = channel
    # What a producer leaves while it writes: an empty file under the hidden name.
    (folder / ".1_abc.ecm.host_9102.msg.part").write_bytes(b"")
    with pytest.raises(Empty):
        chan._get("ecm.host_9102")


def test_a_consumer_polling_while_a_message_is_written_finds_nothing(channel, monkeypatch):
    """Kombu's own transport hands the consumer the empty file here, and its worker stops on the
    decoding error."""
    import config.broker

    chan, _ = channel
    seen = []

    def encode_while_polled(text):
        try:
            seen.append(chan._get("ecm.host_9102"))
        except Empty:
            seen.append("empty")
        return text.encode()

    monkeypatch.setattr(config.broker, "str_to_bytes", encode_while_polled)
    chan._put("ecm.host_9102", {"task": "launch"})
    assert seen == ["empty"]
    assert chan._get("ecm.host_9102") == {"task": "launch"}
