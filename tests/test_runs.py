"Run files, resuming, the main and sweep commands' argument checks"
import pytest, torch
from pathlib import Path
from gradsim_nb import runs
from gradsim_nb.experiments import EXPERIMENTS, pending, sweep
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


@pytest.mark.parametrize('argv, msg', [(['--noise', '1.5'], '--noise must be in [0, 1)'), (['--rules', 'vanilla,mean'], '--rules: unknown mean'),
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
    for exp in EXPERIMENTS.values():
        for cfg in exp['runs'].values(): assert cfg['rule'] in RULES + ('cleanlab',) or cfg['rule'].startswith('twostage_')


def test_shards_split_by_name_whenever_they_start(tmp_path):
    from gradsim_nb.experiments import shard_of
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
    import gradsim_nb.experiments as E
    def fake_get_run(cfg, seed, out, *a, **kw):
        if cfg['rule'] == 'oracle': raise ValueError('boom')
        (Path(out) / E.run_name(cfg, seed)).write_text('{}')
    monkeypatch.setattr(E, 'get_run', fake_get_run)
    with pytest.raises(SystemExit, match=r'1 of 3 runs failed.*oracle.*running the same command again'):
        sweep(['table1', '--seeds', '1', '--jobs', '1', '--out', str(tmp_path)])
    assert sorted(f.name.split('_')[0] for f in tmp_path.glob('*.json')) == ['gradsim', 'vanilla']
    assert E._saved(lambda: 1 / 0, tmp_path / 'x.json') == 'ZeroDivisionError: division by zero' and not (tmp_path / 'x.json').exists()
