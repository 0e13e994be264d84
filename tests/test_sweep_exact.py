"The sweep gives the same numbers however it is run: one process, shards, processes side by side, or Ray tasks (same seed, same thread count)"
import json, os
from pathlib import Path
import pytest, torch
from gradsim_nb.experiments import sweep

SHARED = Path(__file__).resolve().parents[2] / 'shared' / 'data' / 'cifar10-jpeg.tar.gz'
needs_data = pytest.mark.skipif(not (os.environ.get('GRADSIM_DATA') or SHARED.exists()), reason='needs CIFAR-10 (GRADSIM_DATA or ../shared)')


def epochs(folder):
    "Every run's per-epoch records without the wall times"
    return {f.name: [{k: v for k, v in e.items() if k != 'seconds'} for e in json.loads(f.read_text())['epochs']]
            for f in sorted(Path(folder).glob('*.json'))}


@pytest.fixture
def one_thread(monkeypatch):
    monkeypatch.setenv('GRADSIM_DATA', os.environ.get('GRADSIM_DATA', str(SHARED)))
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def quick(out, *extra):
    sweep(['table1', '--quick', '--seeds', '1', '--threads', '1', '--out', str(out), *extra])


@needs_data
def test_shards_give_the_numbers_of_one_process(tmp_path, one_thread):
    quick(tmp_path / 'plain', '--jobs', '1')
    for i in range(2): quick(tmp_path / 'sharded', '--shard', f'{i}/2', '--jobs', '1')
    plain = epochs(tmp_path / 'plain')
    assert len(plain) == 3 and epochs(tmp_path / 'sharded') == plain


@needs_data
def test_processes_side_by_side_give_the_numbers_of_one_process(tmp_path, one_thread):
    quick(tmp_path / 'plain', '--jobs', '1')
    quick(tmp_path / 'jobs', '--jobs', '2')
    plain = epochs(tmp_path / 'plain')
    assert len(plain) == 3 and epochs(tmp_path / 'jobs') == plain


@needs_data
def test_ray_gives_the_numbers_of_one_process(tmp_path, one_thread):
    pytest.importorskip('ray')
    quick(tmp_path / 'plain', '--jobs', '1')
    quick(tmp_path / 'ray', '--ray', 'local')
    plain = epochs(tmp_path / 'plain')
    assert len(plain) == 3 and epochs(tmp_path / 'ray') == plain


@needs_data
def test_cleanlab_runs_in_a_worker_process(tmp_path, one_thread):
    "cleanlab's own process pool relies on fork; inside a spawned sweep worker it must not be used"
    pytest.importorskip('cleanlab')
    sweep(['suspects', '--quick', '--seeds', '1', '--threads', '1', '--jobs', '2', '--out', str(tmp_path)])
    assert len(list(tmp_path.glob('cleanlab_*.json'))) == 2


@needs_data
@pytest.mark.parametrize('tries', [2, 1])
def test_a_killed_worker_is_replaced_and_its_runs_retried(tmp_path, one_thread, tries):
    "A worker killed mid-run (as by the OOM killer) breaks the process pool: a new pool finishes the rest; runs in flight are retried alone, up to `tries`"
    import multiprocessing as mp, signal
    from gradsim_nb.experiments import local_runs, pending
    out = tmp_path / 'killed'
    out.mkdir()
    gen = local_runs(pending(['table1'], out, seeds=1, quick=True), out, jobs=2, tries=tries)
    results = [next(gen)]
    victims = mp.active_children()
    assert victims
    for p in victims: os.kill(p.pid, signal.SIGKILL)
    results += list(gen)
    failed = [name for name, err in results if err]
    assert sorted(name for name, _ in results) == sorted([f.name for f in out.glob('*.json')] + failed)   # every run reported once
    if tries == 2:
        assert not failed
        quick(tmp_path / 'plain', '--jobs', '1')
        assert epochs(out) == epochs(tmp_path / 'plain')   # retried runs give the same numbers
    else:
        assert failed and all('worker process died 1 times' in err for _, err in results if err)
    for p in mp.active_children(): p.join(10)   # terminated by the runner; reap them
    assert not mp.active_children()
