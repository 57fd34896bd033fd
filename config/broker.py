"""The file-system broker of the embedded mode, with each message written whole before it is seen.

Kombu's file-system transport creates a message file in the queue folder and then writes it. A
consumer polling at that moment takes the still-empty file, fails to decode it, and its worker
stops: under concurrent launches an ECM agent died this way (found by the launch and kill
benchmarks). Here a message is written under a name no consumer looks for (a leading dot) and
renamed into place, which is atomic within one folder.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

__all__ = ["Channel", "Transport"]


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict, **kwargs: object) -> None:
        """Put ``payload`` onto ``queue``: written to a hidden name, then renamed to kombu's."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        hidden = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(hidden, "wb", buffering=0) as handle:
                handle.write(str_to_bytes(dumps(payload)))
            os.replace(hidden, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(hidden)
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel
