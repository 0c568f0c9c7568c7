"""A process that writes profile runs into a results store, as a fleet or a search does: several threads at once.

Usage: python -m tests.helpers.store_writer STORE RECORD.json COUNT THREADS TAG
Each thread adds COUNT copies of the record (its created_at and tag changed), printing "committed ID TAG-T-I"
after each commit returns, so that a parent that kills this process knows which results were committed.
"""

import json
import sys
import threading

from edgeprof.store import open_store


def main(store_url: str, record_path: str, count: int, threads: int, tag: str) -> None:
    with open(record_path) as handle:
        record = json.load(handle)
    store = open_store(store_url)
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for i in range(count):
                label = f"{tag}-{thread}-{i}"
                run_id = store.add_profile(
                    {
                        **record,
                        "created_at": f"2026-11-27T10:{thread % 60:02d}:{i % 60:02d}+00:00",
                        "options": {**record.get("options", {}), "label": label},
                    }
                )
                with lock:
                    sys.stdout.write(f"committed {run_id} {label}\n")
                    sys.stdout.flush()
        except BaseException as exc:  # noqa: BLE001 - reported to the parent below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    store.close()
    if errors:
        sys.stderr.write(f"writer failed: {errors[0]!r}\n")
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
