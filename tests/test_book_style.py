"""The book's page rules that a script can check, on every notebook in nbs/:

- a shown code line (a code cell without `#| hide`) is at most 100 characters, so it fits the site's column;
- a figure is at most FIG_PX pixels wide (10 inches at matplotlib's 100 dpi), so the site's column shows it at
  full size, and no shown code asks for text smaller than MIN_PT points: 6.5 pt at 100 dpi is 9 pixels on screen;
- a cell that only checks (three or more `assert` lines and no output), or a wall of checks (eight or more `assert`
  lines, whatever it shows), is hidden on the site with `#| hide`.
"""
import base64, json, re, struct
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted((ROOT / 'nbs').glob('*.ipynb'))
MAX = 100
FIG_PX, MIN_PT = 1024, 6.5


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


def wide_figures(nb):
    "(cell id, width in pixels) of every PNG output wider than FIG_PX"
    out = []
    for c in nb['cells']:
        for o in c.get('outputs', []):
            png = o.get('data', {}).get('image/png')
            if png:
                w = struct.unpack('>I', base64.b64decode(''.join(png))[16:20])[0]   # the IHDR width
                if w > FIG_PX: out.append((c.get('id'), w))
    return out


_re_size = re.compile(r"""(?<![\w.])(?:fontsize|size)\s*=\s*(?:(\d+(?:\.\d+)?)|['"](xx-small)['"])""")


def tiny_text(nb):
    "(cell id, size asked for) of every font size below MIN_PT points in shown or exported code"
    return [(c.get('id'), m[1] or m[2]) for c in nb['cells'] if c['cell_type'] == 'code'
            for m in _re_size.finditer(''.join(c['source'])) if m[2] or float(m[1]) < MIN_PT]


@pytest.mark.parametrize('path', NBS, ids=[p.stem for p in NBS])
def test_figures_fit_the_column_and_their_text_is_legible(path):
    nb = json.load(open(path))
    assert not wide_figures(nb), f"{path.name}: figures wider than {FIG_PX} px (cell id, width): {wide_figures(nb)}"
    assert not tiny_text(nb), f"{path.name}: text below {MIN_PT} pt (cell id, size): {tiny_text(nb)}"


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
    png = lambda w: base64.b64encode(b'\x89PNG\r\n\x1a\n' + b'\0\0\0\rIHDR' + struct.pack('>II', w, 10)).decode()
    figs = {'cells': [cell('plt.plot(x)', [{'data': {'image/png': png(w)}}]) for w in (1000, 1390)]}
    assert wide_figures(figs) == [('x', 1390)]
    assert tiny_text({'cells': [cell("ax.text(0, 0, 'a', fontsize=6)\nax.legend(fontsize='xx-small')"),
                                cell("ax.legend(fontsize=8)")]}) == [('x', '6'), ('x', 'xx-small')]
