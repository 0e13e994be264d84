"The sweep gives the same numbers however it is run: one process, shards, processes side by side, or Ray tasks (same seed, same thread count)"
import json, os, time
from pathlib import Path
import pytest, torch
from gradsim_nb.sweep import sweep

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
    from gradsim_nb.sweep import local_runs, pending
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
    # terminated by the runner. The pool's own thread may be reaping a killed worker at the same moment, and then
    # multiprocessing reports it alive for a while after it is gone: wait for its books to agree, up to 30 s
    deadline = time.time() + 30
    while mp.active_children() and time.time() < deadline: time.sleep(0.2)
    left = mp.active_children()
    assert not left, [(p.name, p.pid, Path(f'/proc/{p.pid}').exists()) for p in left]


# Issue 17: a sweep ends cleanly, or is stopped cleanly, however it ends; each a `gradsim-sweep` in its own process

import signal, socket, subprocess, sys, time


def sweep_cmd(out, *extra):
    return [sys.executable, '-c', 'from gradsim_nb.sweep import sweep; sweep()', 'table1', '--quick', '--seeds', '1', '--threads', '1',
            '--out', str(out), *extra]


def children(pid):
    "Process ids of `pid`'s children, from every one of its threads"
    kids = []
    for f in Path(f'/proc/{pid}/task').glob('*/children'):
        try: kids += map(int, f.read_text().split())
        except OSError: pass
    return kids


def alive(pid):
    "Running (a zombie, dead but not yet reaped by its new parent, counts as gone)"
    try: return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError: return False


def is_worker(pid):
    try: return b'spawn_main' in Path(f'/proc/{pid}/cmdline').read_bytes()
    except OSError: return False


@needs_data
@pytest.mark.skipif(not Path('/proc/self/task').exists(), reason='reads /proc (Linux)')
@pytest.mark.parametrize('sig', ['SIGKILL', 'SIGTERM'])
def test_a_killed_sweep_leaves_no_worker_behind(tmp_path, one_thread, sig):
    "Workers (about 1 GB each) must not outlive their sweep: SIGTERM stops them as Ctrl-C does, and after SIGKILL they notice and exit"
    from gradsim_nb.sweep import claimed_by
    out, kids = tmp_path / 'out', []
    with open(tmp_path / 'log', 'w') as log:   # a file, not a pipe: waiting on the sweep must not wait on its workers
        p = subprocess.Popen(sweep_cmd(out, '--jobs', '2'), stdout=log, stderr=subprocess.STDOUT)
    try:
        t = time.time()
        while sum(map(is_worker, children(p.pid))) < 2:
            assert p.poll() is None and time.time() - t < 120, (tmp_path / 'log').read_text()[-2000:]
            time.sleep(0.1)
        time.sleep(4)   # let them get into their runs (a worker terminated then holds tqdm's lock)
        kids = children(p.pid)
        p.send_signal(getattr(signal, sig))
        p.wait(30)
        t = time.time()
        # they check five times a second; 30 s, because a loaded machine (CI, a sweep beside) can be slow to run them
        while any(map(alive, kids)) and time.time() - t < 30: time.sleep(0.1)
        assert not [k for k in kids if alive(k)], f'still running {time.time() - t:.1f} s after the sweep died'
    finally:
        if p.poll() is None: p.kill()
        for k in kids:
            if alive(k): os.kill(k, signal.SIGKILL)
    claims = list(out.glob('*.claim'))
    if sig == 'SIGTERM':   # cleaned up as after Ctrl-C: claims given back, status 128 + 15, no semaphore left to a terminated worker
        log = (tmp_path / 'log').read_text()
        assert p.returncode == 143 and not claims and 'interrupted' in log and 'leaked semaphore' not in log, log[-2000:]
    else:                  # no chance to clean up: its claims are left, and stale, so the next sweep takes them over
        assert claims and all(claimed_by(c.with_suffix('')) is None for c in claims)


@needs_data
def test_a_sweep_ends_without_leaked_semaphores_and_leaves_another_sweeps_run_alone(tmp_path, one_thread):
    from gradsim_nb.sweep import pending, run_name
    out = tmp_path / 'out'
    out.mkdir()
    name = run_name(*pending(['table1'], out, seeds=1, quick=True)[0])
    other = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])   # stands for a second sweep, training one run
    try:
        claim = json.dumps(dict(pid=other.pid, host=socket.gethostname()))
        (out / f'{name}.claim').write_text(claim)
        r = subprocess.run(sweep_cmd(out, '--jobs', '2'), capture_output=True, text=True, timeout=300)
    finally: other.kill(); other.wait()
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'leaked semaphore' not in r.stderr and 'Traceback' not in r.stderr, r.stderr[-3000:]
    assert f'{name}: left alone, being trained by process {other.pid}' in r.stdout and '1 of 3 runs were left to another sweep' in r.stdout
    assert len(list(out.glob('*.json'))) == 2 and not (out / name).exists()
    assert [f.name for f in out.glob('*.claim')] == [f'{name}.claim'] and (out / f'{name}.claim').read_text() == claim


def test_list_into_a_closed_pipe_exits_quietly(tmp_path):
    "`gradsim-sweep --list | head`: the reader has gone before the list is written"
    p = subprocess.Popen(sweep_cmd(tmp_path, '--list')[:3] + ['all', '--list', '--out', str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdout.close()   # long before the sweep has imported torch and starts writing
    err = p.stderr.read()
    assert p.wait(120) == 1 and err == ''
