"Issue 29: no tool writes over what a user wrote, and a clear one-line error says why"
import csv, os, sys
from pathlib import Path
import pytest, torch
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
import docs  # noqa: E402
from gradsim_nb.suspects_cli import write_suspects, suspects_main  # noqa: E402


def test_site_builder_never_empties_a_folder_of_yours(tmp_path):
    mine = tmp_path / 'mine'; mine.mkdir(); (mine / 'notes.txt').write_text('keep me')
    with pytest.raises(SystemExit, match='already holds files this tool did not write'): docs.build(mine, work=tmp_path / 'work')
    assert (mine / 'notes.txt').read_text() == 'keep me'


@pytest.mark.parametrize('target', ['nbs', '.', 'gradsim_nb', 'results/runs', 'nbs/site'])
def test_site_builder_refuses_the_book_the_checkout_and_the_runs(target, tmp_path):
    before = sorted(p.name for p in (ROOT / 'nbs').iterdir())
    with pytest.raises(SystemExit, match='never writes into|must not hold each other'): docs.build(ROOT / target, work=tmp_path / 'work')
    assert sorted(p.name for p in (ROOT / 'nbs').iterdir()) == before


def test_site_builder_refuses_out_equal_to_its_notebooks(tmp_path):
    nbs = tmp_path / 'book'; nbs.mkdir(); (nbs / 'index.ipynb').write_text('{}')
    with pytest.raises(SystemExit, match='must not hold each other|did not write'): docs.build(nbs, nbs=nbs, work=tmp_path / 'work')
    assert (nbs / 'index.ipynb').read_text() == '{}'


def test_site_builder_resolves_a_relative_out_from_the_current_folder(tmp_path, monkeypatch):
    (tmp_path / 'site').mkdir(); (tmp_path / 'site' / 'x.txt').write_text('mine')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit, match=str(tmp_path / 'site')): docs.build('site', work=tmp_path / 'work')


def test_site_builder_names_a_broken_notebook(tmp_path):
    bad = tmp_path / 'broken.ipynb'; bad.write_text('{"cells": [')
    with pytest.raises(SystemExit, match='broken.ipynb: not a notebook'): docs.read_nb(bad, tries=1)


def test_suspects_csv_never_writes_over_another_file(tmp_path):
    scores, labels = torch.tensor([0.1, 0.9, 0.5]), torch.tensor([0, 1, 2])
    f = tmp_path / 'run.json'; f.write_text('{"last5": 50}')
    with pytest.raises(ValueError, match='is not a suspects CSV'): write_suspects(f, scores, labels)
    assert f.read_text() == '{"last5": 50}'
    with pytest.raises(SystemExit, match='--csv: .* is not a suspects CSV'): suspects_main(['--csv', str(f), '--subset', '10,10'])
    ours = write_suspects(tmp_path / 's.csv', scores, labels)
    write_suspects(ours, scores, labels, top=1)   # its own file: replaced
    rows = list(csv.reader(open(ours)))
    assert rows[0][:4] == ['rank', 'index', 'label', 'suspicion'] and len(rows) == 2 and rows[1][1] == '1'
    assert sorted(p.name for p in tmp_path.iterdir()) == ['run.json', 's.csv']   # no temporary file left
    with pytest.raises(ValueError, match='is a folder'): write_suspects(tmp_path, scores, labels)


# Options are checked before anything trains, and a bad one is one line naming it (issue 29, items 4 to 6)

import json, signal, warnings
from gradsim_nb import runs
from gradsim_nb.runs import main, run_name, get_run, check_run
from gradsim_nb.sweep import sweep
from gradsim_nb.data import NoisyData, add_label_noise


def toy(n=200):
    g = torch.Generator().manual_seed(0)
    true = torch.randint(0, 10, (n,), generator=g)
    x = torch.randint(0, 255, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    return NoisyData(x, add_label_noise(true, 0.4, seed=0), true, x[:50], true[:50], 'class-major')


def no_training(monkeypatch):
    monkeypatch.setattr(runs, 'train', lambda *a, **k: pytest.fail('trained before every option was checked'))
    monkeypatch.setattr(runs, 'train_data', lambda *a, **k: pytest.fail('loaded data before every option was checked'))


@pytest.mark.parametrize('argv, msg', [
    (['--rules', 'vanilla,gradsim,agreement', '--decay', '1.5'], '--decay: expected a number in [0, 1)'),
    (['--rules', 'vanilla,agreement', '--decay', 'nan'], '--decay: expected a number in [0, 1)'),
    (['--rules', 'vanilla,gradsim', '--warmup', '-2'], '--warmup: expected an integer >= 0'),
    (['--rules', 'vanilla,gradsim', '--warmup', '30'], '--warmup: 30 plain epochs of 30'),
    (['--rules', 'vanilla,gradsim', '--a', 'nan'], '--a: the annealing scale must be a finite number'),
    (['--rules', 'vanilla,gradsim', '--k', '0'], '--k:'),
    (['--relabel', 'nan,3'], '--relabel margin:'),
    (['--rules', 'vanilla,small_loss'], "for rule 'small_loss' use select='mixture' (gradsim-main --select mixture)"),
    (['--rules', 'vanilla,oracle', '--a', '8'], '--a: none of --rules vanilla,oracle reads it'),
    (['--rules', 'vanilla,gradsim', '--decay', '0.5'], '--decay: none of --rules vanilla,gradsim reads it'),
    (['--rules', 'vanilla,'], "--rules: 'vanilla,' has an empty name"),
    (['--seeds', '-1,0'], '--seeds: expected integers >= 0'),
    (['--data', '/no/such/cifar.tar.gz'], '--data: /no/such/cifar.tar.gz does not exist'),
    (['--gamma', '0'], '--gamma: expected a learning-rate decay per epoch in (0, 1]')])
def test_main_checks_every_rule_before_anything_trains(argv, msg, tmp_path, monkeypatch):
    no_training(monkeypatch)
    with pytest.raises(SystemExit) as e: main(argv + ['--out', str(tmp_path)])
    assert msg in str(e.value) and '\n' not in str(e.value) and not list(tmp_path.iterdir())


def test_sweep_stops_at_once_when_the_data_is_missing_and_names_all_alone(tmp_path, monkeypatch):
    no_training(monkeypatch)
    with pytest.raises(SystemExit, match='--data|data: /nope.tar.gz does not exist'):
        sweep(['table1', '--seeds', '1', '--jobs', '1', '--data', '/nope.tar.gz', '--out', str(tmp_path)])
    with pytest.raises(SystemExit, match="'all' already names every experiment"): sweep(['all', 'table1', '--out', str(tmp_path)])
    (tmp_path / run_name(dict(rule='vanilla'), 0)).mkdir()   # a folder where a run file belongs
    with pytest.raises(SystemExit, match='is a folder, where this run'): sweep(['table1', '--seeds', '1', '--jobs', '1', '--out', str(tmp_path)])
    with pytest.raises(ValueError, match='is a folder, where this run'): get_run(dict(rule='vanilla'), 0, tmp_path)


def test_run_names_keep_every_digit_that_matters():
    assert run_name(dict(rule='agreement', decay=0.8000001), 0) != run_name(dict(rule='agreement'), 0)
    assert run_name(dict(rule='gradsim', a=4.0000001), 0) != run_name(dict(rule='gradsim'), 0)
    assert run_name(dict(noise=0.40000001), 0) != run_name({}, 0)
    assert run_name(dict(rule='gradsim', a=8.0), 0) == 'gradsim_symmetric0.4_e30_layerslast_a8_k4_seed0.json'   # short names unchanged


@pytest.mark.parametrize('cfg, msg', [(dict(rule='agreement', decay='0.5'), 'decay: expected a number'),
                                      (dict(rule='agreement', decay=torch.tensor(0.5)), 'decay: expected a number'),
                                      (dict(rule='loss_finetune', epochs=60, a=8.0), "a: rule 'loss_finetune' does not use it"),
                                      (dict(rule='gradsim', decay=0.5), "decay: rule 'gradsim' does not use it"),
                                      (dict(rul='gradsim'), 'rul: not a run setting'),
                                      (dict(noise=1.2), 'noise: expected a fraction')])
def test_check_run_refuses_what_a_run_would_ignore_or_misread(cfg, msg):
    with pytest.raises(ValueError, match=msg.replace('(', r'\(')): check_run(cfg)


def test_a_run_from_the_other_copy_of_cifar10(tmp_path, monkeypatch):
    "Reused for its accuracy with a warning; refused where its per-example scores would land on other images"
    monkeypatch.delenv('GRADSIM_DATA', raising=False)   # no data given: torchvision's copy, in original order
    cfg = dict(rule='vanilla', track_loss=True)
    h = {'config': {'order': 'class-major'}, 'epochs': [{}], 'last5': 50.0}
    (tmp_path / run_name(dict(rule='vanilla'), 0)).write_text(json.dumps(h))
    with pytest.warns(UserWarning, match='trained on the class-major copy'): assert get_run(dict(rule='vanilla'), 0, tmp_path)['last5'] == 50
    (tmp_path / run_name(cfg, 0)).write_text(json.dumps(h | {'example_loss': [0.1]}))
    with pytest.raises(ValueError, match='its per-example scores belong to other images'): get_run(cfg, 0, tmp_path)


def test_two_stage_names_what_it_does_not_take_and_a_filter_that_keeps_nothing(monkeypatch):
    import importlib; T = importlib.import_module('gradsim_nb.train')   # the module, not the function of that name
    with pytest.raises(ValueError, match='rule: two_stage trains gradsim then vanilla'): T.two_stage(toy(), keep='agreement', rule='gradsim')
    monkeypatch.setattr(T, 'keep_by_mixture', lambda scores: torch.zeros(len(scores), dtype=torch.bool))
    with pytest.raises(ValueError, match="keep: the 'loss' filter kept none of the 200"):
        T.two_stage(toy(), keep='loss', epochs=1, progress=False)


def test_summary_of_no_full_run_says_why(tmp_path):
    (tmp_path / run_name(dict(rule='vanilla', subset=(2000, 1000), epochs=2), 0)).write_text(json.dumps({'config': {}, 'epochs': [], 'last5': 1}))
    with pytest.raises(SystemExit, match='holds no finished run of any experiment in its full configuration'):
        sweep(['--summary', '--out', str(tmp_path)])
    assert not (tmp_path / 'SUMMARY.md').exists()


def test_sigterm_stops_gradsim_main_with_a_word(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(runs, 'get_run', lambda *a, **k: os.kill(os.getpid(), signal.SIGTERM))
    with pytest.raises(SystemExit) as e: main(['--subset', '100,50', '--out', str(tmp_path)])
    assert e.value.code == 143 and 'interrupted: finished runs are saved in' in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL   # given back


def test_book_runner_says_why_a_notebook_failed(tmp_path):
    import book, nbformat
    bad = tmp_path / 'bad.ipynb'; bad.write_text('{"cells": [')
    assert book.execute(bad, 10).startswith('not a readable notebook')
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell('x = 1'), nbformat.v4.new_code_cell('import time; time.sleep(60)')])
    slow = tmp_path / 'slow.ipynb'; nbformat.write(nb, slow)
    assert book.execute(slow, 3) == f"cell 1 (id {nb.cells[1].id}) ran past --timeout 3 s"
    nb.cells[1].source = 'raise ValueError("boom")'; nbformat.write(nb, slow)
    assert book.execute(slow, 30).startswith('cell 1: ValueError: boom')


def test_suspects_csv_indexes_a_subset_by_its_place_in_cifar10(tmp_path):
    d = toy(200)
    s = d.subset(20, 10, seed=3)
    assert torch.equal(d.x[s.index], s.x) and torch.equal(s.subset(5).x, d.x[s.subset(5).index])   # a subset of a subset too
    f = write_suspects(tmp_path / 's.csv', torch.arange(20.), s.y, index=s.index)
    rows = list(csv.reader(open(f)))[1:]
    assert [int(r[1]) for r in rows] == s.index.flip(0).tolist()   # most suspect first: the highest score, position 19
