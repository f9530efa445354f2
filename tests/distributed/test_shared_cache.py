"""Ranks on one host share the compiled-code cache directory: two processes writing the same entry at once
leave a whole file, and a reader only ever sees no file or a whole one (inductor/cache.py writes a temporary file
and os.replace's it into place)."""
import multiprocessing

from framejit.inductor import cache

ROUNDS = 300


def _write_and_read(key: str, marker: int, queue) -> None:
    payload = {"source": "x" * 20000, "marker": marker}
    seen = {"whole": 0, "missing": 0, "other": 0}
    for _ in range(ROUNDS):
        cache.put(key, payload)
        cache.clear_memory()  # read back from disk, where the other process writes too
        got = cache.get(key)
        if got is None:
            seen["missing"] += 1
        elif got["source"] == payload["source"] and got["marker"] in (0, 1):
            seen["whole"] += 1
        else:
            seen["other"] += 1
    queue.put((dict(seen), dict(cache.stats)))


def test_two_processes_writing_one_entry(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    key = cache.make_key("graph(): shared by two ranks", [], "numpy")
    workers = [context.Process(target=_write_and_read, args=(key, marker, queue)) for marker in (0, 1)]
    for w in workers:
        w.start()
    results = [queue.get(timeout=120) for _ in workers]
    for w in workers:
        w.join(timeout=30)
        assert w.exitcode == 0
    for seen, stats in results:
        assert seen["whole"] == ROUNDS and stats["corrupt"] == 0, (seen, stats)
    directory = cache.cache_dir() / "numpy"
    assert [p.name for p in directory.iterdir()] == [f"{key}.json"], "a temporary file was left behind"
