"""gunicorn settings for the web process."""

from prometheus_client import multiprocess


def child_exit(server, worker) -> None:  # noqa: ANN001 - gunicorn's hook signature
    # Drop a dead worker's live gauges from the multi-process metrics.
    multiprocess.mark_process_dead(worker.pid)
