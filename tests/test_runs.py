"Run files, resuming, the main and sweep commands' argument checks"
import pytest, torch
from pathlib import Path
from gradsim_nb import runs
from gradsim_nb.experiments import EXPERIMENTS
from gradsim_nb.sweep import pending, sweep
from gradsim_nb.suspects_cli import suspects_main
from gradsim_nb.data import NoisyData, add_label_noise


def test_run_name_holds_what_decides_the_result():
    assert runs.run_name(dict(rule='vanilla', a=8.0), 0) == runs.run_name(dict(rule='vanilla'), 0)   # vanilla ignores a
    names = {runs.run_name(c, 0) for c in [dict(rule='gradsim'), dict(rule='gradsim', a=8.0), dict(rule='gradsim', k=None),
                                           dict(rule='gradsim', layers='all'), dict(rule='rank_drop'), dict(rule='rank_drop', drop='top'),
                                           dict(rule='gradsim', noise=0.2), dict(rule='gradsim', subset=(100, 50))]}
    assert len(names) == 8
    assert runs.run_name(dict(rule='gradsim'), 0) != runs.run_name(dict(rule='gradsim'), 1)


def toy_data(rate, kind, seed, data, cache, verbose):
    g = torch.Generator().manual_seed(seed)
    true = torch.randint(0, 10, (200,), generator=g)
    x = torch.randint(0, 255, (200, 3, 32, 32), dtype=torch.uint8, generator=g)
    return NoisyData(x, add_label_noise(true, rate, kind, seed=seed), true, x[:50], true[:50])


def test_get_run_saves_and_resumes(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, 'noisy_cifar10', toy_data)
    cfg = dict(rule='gradsim', epochs=1)
    h = runs.get_run(cfg, 0, tmp_path, progress=False, log=lambda *_: None)
    assert (tmp_path / runs.run_name(cfg, 0)).exists()
    monkeypatch.setattr(runs, 'train', lambda *a, **k: pytest.fail('a finished run was trained again'))
    assert runs.get_run(cfg, 0, tmp_path, progress=False) == h


@pytest.mark.parametrize('argv, msg', [(['--noise', '1.5'], '--noise must be in [0, 1)'), (['--rules', 'vanilla,mean'], "--rules: unknown 'mean'"),
                                       (['--seeds', '0,x'], '--seeds: expected comma-separated integers')])
def test_main_bad_arguments(argv, msg):
    with pytest.raises(SystemExit) as e: runs.main(argv)
    assert msg in str(e.value)


def test_pending_shares_runs_between_experiments(tmp_path):
    t1, t2 = pending(['table1'], tmp_path), pending(['table1', 'table2'], tmp_path)
    assert len(t1) == 15 and len(t2) == 15 + 4 * 5            # table2's vanilla is table1's
    assert [s for _, s in t1] == sorted(s for _, s in t1)       # seed-major: first seeds of everything first


def test_sweep_bad_arguments(tmp_path):
    with pytest.raises(SystemExit, match='unknown experiment fig9'): sweep(['fig9', '--out', str(tmp_path)])
    with pytest.raises(SystemExit, match='--shard'): sweep(['table1', '--shard', '2/2', '--out', str(tmp_path)])
    with pytest.raises(SystemExit, match='--jobs must be at least 1'): sweep(['table1', '--jobs', '0', '--out', str(tmp_path)])


def test_every_experiment_names_valid_rules():
    from gradsim_nb.learner import RULES
    from gradsim_nb.train import MEMORY_RULES, FIELD_RULES, STAGED
    for exp in EXPERIMENTS.values():
        for cfg in exp['runs'].values(): assert cfg['rule'] in RULES + MEMORY_RULES + FIELD_RULES + STAGED + ('cleanlab',), cfg['rule']
    names = {runs.run_name(c, 0) for c in (dict(rule='agreement'), dict(rule='agreement', decay=0.5), dict(rule='agreement', select='mixture'),
                                           dict(rule='agreement', warmup=5), dict(rule='small_loss', select='mixture'))}
    assert len(names) == 5   # each memory setting names its own file
    assert runs.run_name(dict(rule='agreement'), 0) == runs.run_name(dict(rule='agreement', decay=runs.DEFAULTS['decay']), 0)
    assert runs.run_name(dict(rule='gradsim', decay=0.8), 0) == runs.run_name(dict(rule='gradsim'), 0)   # gradsim keeps no memory


def test_memory_and_filter_rules_run_from_a_run_dict(tmp_path, monkeypatch):
    "Each rule of notebook 27 trains from the registry's kind of dict, and the two-stage filters keep some examples"
    monkeypatch.setattr(runs, 'noisy_cifar10', toy_data)
    for cfg in (dict(rule='agreement', select='mixture', warmup=1, epochs=2), dict(rule='small_loss', select='mixture', epochs=2),
                dict(rule='agreement_finetune', epochs=2), dict(rule='loss_finetune', epochs=2)):
        h = runs.train_run(cfg, 0, progress=False, log=None)
        assert len(h['epochs']) == 2 and h['config']['rule'] == cfg['rule']
        if cfg['rule'].endswith('finetune'): assert 0 < h['config']['kept'] <= 200
    with pytest.raises(ValueError, match='even number'): runs.train_run(dict(rule='loss_finetune', epochs=3), 0, log=None)


def test_loss_tracked_run_is_the_plain_run_plus_mean_losses(monkeypatch):
    "track_loss (the `detect` experiment, notebook 27) changes no number of the run, and its mean losses are a suspicion score"
    from gradsim_nb.suspects import suspicion
    monkeypatch.setattr(runs, 'noisy_cifar10', toy_data)
    plain, tracked = (runs.train_run(dict(rule='vanilla', epochs=2, track_loss=t), 0, progress=False, log=None) for t in (False, True))
    assert [e['test_acc'] for e in tracked['epochs']] == [e['test_acc'] for e in plain['epochs']] and tracked['last5'] == plain['last5']
    assert len(tracked['example_loss']) == 200 and 'example_loss' not in plain
    assert torch.equal(suspicion(tracked), torch.tensor(tracked['example_loss']))
    assert runs.run_name(dict(rule='vanilla', track_loss=True), 0) != runs.run_name(dict(rule='vanilla'), 0)
    with pytest.raises(ValueError, match='track, track_loss'): runs.train_run(dict(rule='twostage_finetune', epochs=2, track_loss=True), 0, log=None)


def test_shards_split_by_name_whenever_they_start(tmp_path):
    from gradsim_nb.sweep import shard_of
    names = [runs.run_name(c, s) for c, s in pending(['fig4_topk', 'fig3_anneal'], tmp_path)]
    parts = [{n for n in names if shard_of(n, 3) == i} for i in range(3)]
    assert set().union(*parts) == set(names) and sum(map(len, parts)) == len(names)   # a partition
    assert all(shard_of(n, 3) == shard_of(n, 3) for n in names[:5])                  # stable


def test_paired_matches_seeds_not_positions():
    from gradsim_nb.experiments import paired
    h = lambda seed, acc: {'config': {'seed': seed}, 'last5': acc}
    res = {'a': [h(0, 50.), h(2, 52.)], 'b': [h(0, 49.), h(1, 40.), h(2, 50.)]}
    assert paired(res, 'a', 'b') == [1., 2.]


def test_unreadable_run_is_trained_again_and_odd_two_stage_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, 'noisy_cifar10', toy_data)
    cfg = dict(rule='vanilla', epochs=1)
    (tmp_path / runs.run_name(cfg, 0)).write_text('{"config": ')
    assert runs.get_run(cfg, 0, tmp_path, progress=False, log=lambda *_: None)['epochs']
    with pytest.raises(ValueError, match='even number'): runs.get_run(dict(rule='twostage_scratch', epochs=5), 0, tmp_path)


@pytest.mark.parametrize('argv, msg', [(['--subset', '2000'], '--subset: expected N_TRAIN,N_TEST'), (['--epochs', '0'], '--epochs must be at least 1')])
def test_main_more_bad_arguments(argv, msg):
    with pytest.raises(SystemExit) as e: runs.main(argv)
    assert msg in str(e.value)


def test_a_failing_run_does_not_stop_the_sweep(tmp_path, monkeypatch):
    import gradsim_nb.sweep as S
    def fake_get_run(cfg, seed, out, *a, **kw):
        if cfg['rule'] == 'oracle': raise ValueError('boom')
        (Path(out) / S.run_name(cfg, seed)).write_text('{}')
    monkeypatch.setattr(S, 'get_run', fake_get_run)
    with pytest.raises(SystemExit, match=r'1 of 3 runs failed.*oracle.*running the same command again'):
        sweep(['table1', '--seeds', '1', '--jobs', '1', '--out', str(tmp_path)])
    assert sorted(f.name.split('_')[0] for f in tmp_path.glob('*.json')) == ['gradsim', 'vanilla']
    assert S._saved(lambda: 1 / 0, tmp_path / 'x.json') == 'ZeroDivisionError: division by zero' and not (tmp_path / 'x.json').exists()
    assert not list(tmp_path.glob('*.claim'))   # claims given back, after a failure too


# Issue 17, run files and the sweep: every case ends in the right numbers or a one-line error naming what to fix

import json, re, socket, subprocess, sys, time
import gradsim_nb.experiments as E
import gradsim_nb.sweep as S
from gradsim_nb.experiments import load_experiment
from gradsim_nb.sweep import claim_run, claimed_by, release_run, Skipped


def one_line(e):
    "The message of a SystemExit or ValueError, checked to be one line"
    msg = str(e.value)
    assert '\n' not in msg, msg
    return msg


@pytest.fixture
def other():
    "A live process other than this one: it stands for a second sweep on the same folder"
    p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])
    yield p
    p.kill(); p.wait()


def claim_as(run, pid, host=None):
    Path(f'{run}.claim').write_text(json.dumps(dict(pid=pid, host=host or socket.gethostname())))


def fake_run(cfg, seed):
    return {'config': dict(cfg, seed=seed), 'last5': 50.0, 'epochs': [{'test_acc': 50.0, 'seconds': 1.0}]}


def fake_get_run(trained):
    def get_run(cfg, seed, out, *a, **kw):
        trained.append(S.run_name(cfg, seed))
        S.save_history(fake_run(cfg, seed), Path(out) / S.run_name(cfg, seed))
    return get_run


def test_a_run_file_cut_short_is_trained_again_and_named_when_read(tmp_path, monkeypatch):
    names = [runs.run_name(*cs) for cs in pending(['table1'], tmp_path, seeds=1)]
    (tmp_path / names[0]).write_text('{"config": {"rule": "vani')   # cut short
    (tmp_path / names[1]).write_text('{"config": {}}')               # JSON, but not a finished run
    S.save_history(fake_run({}, 0), tmp_path / names[2])             # finished
    assert [runs.run_name(*cs) for cs in pending(['table1'], tmp_path, seeds=1)] == names[:2]
    with pytest.raises(ValueError) as e: load_experiment('table1', tmp_path)
    assert str(tmp_path / names[0]) in one_line(e) and 'run gradsim-sweep again' in str(e.value)
    with pytest.raises(SystemExit) as e: sweep(['--summary', '--out', str(tmp_path)])
    assert one_line(e).startswith('gradsim-sweep: error: ') and names[0] in str(e.value) and 'or delete it' in str(e.value)
    trained = []
    monkeypatch.setattr(S, 'get_run', fake_get_run(trained))
    sweep(['table1', '--seeds', '1', '--jobs', '1', '--out', str(tmp_path)])
    assert trained == names[:2] and len(load_experiment('table1', tmp_path)) == 3   # redone, then read
    monkeypatch.setattr(runs, 'noisy_cifar10', toy_data)                            # get_run itself trains a non-run again
    cfg = dict(rule='vanilla', epochs=1)
    (tmp_path / runs.run_name(cfg, 0)).write_text('{"config": {}}')
    assert len(runs.get_run(cfg, 0, tmp_path, progress=False, log=None)['epochs']) == 1


def test_summary_goes_inside_out_and_never_over_a_file_it_did_not_write(tmp_path, monkeypatch):
    mine, folder = tmp_path / 'SUMMARY.md', tmp_path / 'myruns'
    mine.write_text('my notes\n'); folder.mkdir()
    S.save_history(fake_run({}, 0), folder / runs.run_name(dict(rule='vanilla'), 0))
    sweep(['--summary', '--out', str(folder)])
    assert mine.read_text() == 'my notes\n' and '| table1 | vanilla | 1 |' in (folder / 'SUMMARY.md').read_text()
    sweep(['--summary', '--out', str(folder)])                                      # its own file: replaced
    with pytest.raises(SystemExit) as e: sweep(['--summary-to', str(mine), '--out', str(folder)])
    assert 'not written by gradsim-sweep' in one_line(e) and str(mine) in str(e.value) and mine.read_text() == 'my notes\n'
    (folder / 'SUMMARY.md').write_text('# my own summary\n')
    with pytest.raises(SystemExit, match='not written by gradsim-sweep'): sweep(['--summary', '--out', str(folder)])
    assert (folder / 'SUMMARY.md').read_text() == '# my own summary\n'
    sweep(['--summary-to', str(tmp_path / 'new' / 'S.md'), '--out', str(folder)])
    assert (tmp_path / 'new' / 'S.md').read_text().startswith(E.SUMMARY_HEAD)
    with pytest.raises(SystemExit, match="--out: no folder"): sweep(['--summary', '--out', str(tmp_path / 'nothing')])
    monkeypatch.setattr(E, 'RESULTS', tmp_path / 'results' / 'runs')              # the default --out, results/runs: results/SUMMARY.md
    monkeypatch.setattr(S, 'RESULTS', E.RESULTS)                                   # the sweep's own name for it
    E.RESULTS.mkdir(parents=True)
    S.save_history(fake_run({}, 0), E.RESULTS / runs.run_name(dict(rule='vanilla'), 0))
    sweep(['--summary'])
    assert (tmp_path / 'results' / 'SUMMARY.md').read_text().startswith(E.SUMMARY_HEAD + ' from the runs in `results/runs/`')


def test_claims_give_a_run_to_one_process(tmp_path, other):
    run = tmp_path / 'r_seed0.json'
    assert claim_run(run) is None and isinstance(claim_run(run), Skipped)          # a second claim fails while the first holds
    release_run(run)
    assert not list(tmp_path.iterdir())
    claim_as(run, other.pid)                                                         # a live sweep's claim: left alone
    assert claim_run(run) == f'being trained by process {other.pid} since ' + claimed_by(run).split(' since ')[1]
    release_run(run)
    assert Path(f'{run}.claim').exists()                                             # not ours to remove
    claim_as(run, other.pid, host='elsewhere')                                       # another machine's: cannot be checked
    assert 'on elsewhere' in claim_run(run) and f'delete {run}.claim' in claimed_by(run)
    other.kill(); other.wait()
    claim_as(run, other.pid)                                                         # its sweep is gone: stale, taken over
    assert claimed_by(run) is None and claim_run(run) is None and 'this process' in claimed_by(run)
    release_run(run)
    S.save_history(fake_run({}, 0), run)                                             # finished meanwhile: nothing to claim
    assert claim_run(run) == 'finished by another sweep meanwhile' and not Path(f'{run}.claim').exists()


def test_two_processes_claiming_at_once_never_share_a_run(tmp_path):
    "Two processes claim the same 100 runs at the same moment, and stay alive until both are done (else the later one takes over stale claims)"
    code = ('import sys, time; from pathlib import Path; from gradsim_nb.sweep import claim_run\n'
            'd = Path(sys.argv[1]); (d / f"ready{sys.argv[2]}").touch()\n'
            'while not (d / "go").exists(): time.sleep(0.01)\n'
            'print(*[i for i in range(100) if claim_run(d / f"r{i}.json") is None], flush=True); sys.stdin.read()')
    ps = [subprocess.Popen([sys.executable, '-c', code, str(tmp_path), str(k)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
          for k in range(2)]
    try:
        while not all((tmp_path / f'ready{k}').exists() for k in range(2)): assert all(p.poll() is None for p in ps); time.sleep(0.05)
        (tmp_path / 'go').touch()
        got = [set(map(int, p.stdout.readline().split())) for p in ps]
    finally:
        for p in ps: p.stdin.close(); p.wait(30)
    assert not got[0] & got[1] and got[0] | got[1] == set(range(100))


def test_a_sweep_leaves_runs_a_live_sweep_claimed_and_takes_over_stale_claims(tmp_path, monkeypatch, other, capsys):
    names = [runs.run_name(*cs) for cs in pending(['table1'], tmp_path, seeds=1)]
    claim_as(tmp_path / names[0], other.pid)
    claim_as(tmp_path / names[1], 999999999)                                         # no such process
    sweep(['table1', '--seeds', '1', '--list', '--out', str(tmp_path)])
    listed = capsys.readouterr().out
    assert '3 runs to do' in listed and '1 of them being trained by another sweep' in listed
    assert f'{names[0]}  (being trained by process {other.pid}' in listed and f'{names[1]}\n' in listed
    trained = []
    monkeypatch.setattr(S, 'get_run', fake_get_run(trained))
    sweep(['table1', '--seeds', '1', '--jobs', '1', '--out', str(tmp_path)])       # exits 0: nothing failed
    out = capsys.readouterr().out
    assert trained == names[1:] and f'{names[0]}: left alone, being trained by process {other.pid}' in out
    assert '1 of 3 runs were left to another sweep' in out
    assert [f.name for f in tmp_path.glob('*.claim')] == [f'{names[0]}.claim']       # ours released, the other's kept


def test_an_unwritable_out_is_refused_before_any_training(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, 'noisy_cifar10', toy_data)
    monkeypatch.setattr(runs, 'train', lambda *a, **k: pytest.fail('trained a run it could not save'))
    f = tmp_path / 'a-file'
    f.write_text('mine')
    for bad in (f, f / 'sub'):
        for cli in (lambda: runs.main(['--epochs', '1', '--rules', 'vanilla', '--out', str(bad)]),
                    lambda: sweep(['table1', '--seeds', '1', '--jobs', '1', '--out', str(bad)]),
                    lambda: suspects_main(['--epochs', '1', '--out', str(bad), '--csv', str(tmp_path / 's.csv')])):
            with pytest.raises(SystemExit) as e: cli()
            assert re.match(r'gradsim-\w+: error: --out: ', one_line(e)) and str(bad) in str(e.value)
    with pytest.raises(ValueError, match=r"^out: .*a-file' is a file"): runs.get_run(dict(rule='vanilla', epochs=1), 0, f)
    assert f.read_text() == 'mine'


@pytest.mark.parametrize('argv, msg', [(['--seeds', '0,0'], "--seeds: '0,0' names 0 twice"), (['--rules', 'vanilla,oracle,vanilla'], 'names vanilla twice'),
                                       (['--subset', '500,100,7'], '--subset: expected N_TRAIN,N_TEST, two positive integers'),
                                       (['--subset', '0,0'], '--subset: expected N_TRAIN,N_TEST')])
def test_main_refuses_what_would_count_wrong(argv, msg):
    with pytest.raises(SystemExit) as e: runs.main(argv)
    assert msg in one_line(e)


def test_a_subset_larger_than_the_data_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, 'noisy_cifar10', toy_data)                             # 200 training, 50 test examples
    with pytest.raises(SystemExit) as e: runs.main(['--subset', '999999,10', '--epochs', '1', '--rules', 'vanilla', '--out', str(tmp_path)])
    assert 'subset: asked for 999,999 training and 10 test examples, but the data has 200 and 50' in one_line(e)
    assert not list(tmp_path.glob('*n999999*'))
    for bad in [(0, 0), (5,), (100, 10, 7), (100, 51)]:
        with pytest.raises(ValueError, match='^subset: '): runs.train_data(dict(subset=bad), 0)
    assert len(runs.train_data(dict(subset=(200, 50)), 0).y) == 200


def test_sweep_seeds_must_be_positive(tmp_path):
    for bad in ('-3', '0'):
        with pytest.raises(SystemExit) as e: sweep(['table1', '--seeds', bad, '--out', str(tmp_path)])
        assert f'--seeds must be at least 1, got {bad}' in one_line(e)
    with pytest.raises(ValueError, match='seeds: expected at least 1'): pending(['table1'], tmp_path, seeds=0)
    with pytest.raises(ValueError, match='seeds: expected at least 1'): E.run_experiment('table1', seeds=-1, out=tmp_path)


def test_committed_summary_matches_the_committed_runs():
    "results/SUMMARY.md is a results file: it must say what the runs in results/runs/ say, not what they once said"
    from gradsim_nb.experiments import summary_markdown, RESULTS
    text = (RESULTS.parent / 'SUMMARY.md').read_text(encoding='utf-8')
    assert summary_markdown() in text, 'results/SUMMARY.md is stale: run gradsim-sweep --summary and commit it'
