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
