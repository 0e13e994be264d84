"""The book's page rules that a script can check, on every notebook in nbs/:

- a shown code line (a code cell without `#| hide`) is at most 100 characters, so it fits the site's column;
- a cell that only checks (three or more `assert` lines and no output), or a wall of checks (eight or more `assert`
  lines, whatever it shows), is hidden on the site with `#| hide`.
"""
import json, re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted((ROOT / 'nbs').glob('*.ipynb'))
MAX = 100


def hidden(src):
    return any(re.fullmatch(r'#\|\s*hide\s*', l.strip()) for l in src.split('\n'))


def long_lines(nb):
    "(cell id, line number, length) of every shown code line over MAX characters"
    out = []
    for c in nb['cells']:
        s = ''.join(c['source'])
        if c['cell_type'] != 'code' or hidden(s): continue
        out += [(c.get('id'), i, len(l)) for i, l in enumerate(s.split('\n'), 1) if len(l) > MAX]
    return out


WALL = 8


def shown_checks(nb):
    "Ids of shown code cells with three or more assert lines and no output, or WALL or more whatever their output"
    n = lambda s: sum(l.lstrip().startswith('assert') for l in s.split('\n'))
    return [c.get('id') for c in nb['cells'] if c['cell_type'] == 'code' and not hidden(s := ''.join(c['source']))
            and (n(s) >= 3 and not c.get('outputs') or n(s) >= WALL)]


@pytest.mark.parametrize('path', NBS, ids=[p.stem for p in NBS])
def test_shown_code_fits_the_page(path):
    bad = long_lines(json.load(open(path)))
    assert not bad, f"{path.name}: shown code lines over {MAX} characters (cell id, line, length): {bad[:10]}"


@pytest.mark.parametrize('path', NBS, ids=[p.stem for p in NBS])
def test_check_cells_are_hidden(path):
    bad = shown_checks(json.load(open(path)))
    assert not bad, f"{path.name}: cells that only check are shown on the site; add `#| hide`: {bad}"


def test_the_checks_can_fail():
    cell = lambda src, out=(): {'cell_type': 'code', 'id': 'x', 'source': [src], 'outputs': list(out)}
    nb = {'cells': [cell('y = ' + 'x' * 120), cell('#| hide\nz = ' + 'x' * 120),
                    cell('assert a\nassert b\nassert c'), cell('#| hide\nassert a\nassert b\nassert c'),
                    cell('assert a\nassert b\nassert c\nx', ['out']), cell('assert a\n' * WALL + 'x', ['out'])]}
    nb['cells'][-1]['id'] = 'wall'
    assert long_lines(nb) == [('x', 1, 124)]
    assert shown_checks(nb) == ['x', 'wall']
