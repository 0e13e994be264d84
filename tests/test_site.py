"""The documentation site and the widgets app, looked at in a real browser (headless Chromium from Debian, driven by
Playwright; tools/sitecheck.py and tools/voila_check.py say what is checked).

The site is the one tools/test.sh has just built when GRADSIM_SITE names it, else this module builds _site/ with
tools/docs.py. Without Chromium, Playwright or Sphinx these tests skip with the reason, except under CI=true,
where they fail: CI must never pass without having looked."""
import hashlib, json, os, re, shutil, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
import docs, sitecheck  # noqa: E402

SCREENS = ROOT / '_site_screens'


def _need_browser():
    missing = []
    try: import playwright.sync_api  # noqa: F401
    except ImportError: missing.append('playwright (pip install -e ".[dev]")')
    try: import sphinx, myst_nb  # noqa: F401
    except ImportError: missing.append('sphinx and myst-nb (pip install -e ".[dev]")')
    if not sitecheck.find_chromium(): missing.append('chromium (apt-get install -y chromium, as tools/setup.sh does)')
    if missing: _missing('the browser tests need ' + ', '.join(missing))


def _missing(msg):
    "Skip with `msg`, but fail under CI: CI must never pass without having looked"
    if os.environ.get('CI', '').lower() in ('1', 'true', 'yes'): pytest.fail(msg + ' (CI: a missing browser fails, never skips)')
    pytest.skip(msg)


@pytest.fixture(scope='module')
def site():
    "(site folder, Sphinx warnings file)"
    _need_browser()
    given = os.environ.get('GRADSIM_SITE')
    if given:
        assert (Path(given) / 'index.html').exists(), f'GRADSIM_SITE={given} holds no site'
        return Path(given), Path(os.environ.get('GRADSIM_SITE_WARNINGS', docs.BUILD / 'warnings.txt'))
    n, warnings = docs.build(docs.SITE, quiet=True)
    return docs.SITE, warnings


def test_sphinx_gives_no_warning(site):
    text = site[1].read_text() if site[1].exists() else ''
    assert not re.search(r'\bWARNING\b|\bERROR\b', text), 'Sphinx warnings:\n' + text


def test_every_notebook_has_its_page(site):
    exp = sitecheck.expectations(ROOT / 'nbs')
    assert 'index.html' in exp and len(exp) == len(docs.notebooks(ROOT / 'nbs'))
    missing = [p for p in exp if not (site[0] / p).exists()]
    assert not missing, f'pages missing: {missing}'
    # nbdev's names: 02_weights.ipynb -> weights.html
    assert all(not re.match(r'^\d', p) for p in exp)


def test_site_in_browser(site):
    rep = sitecheck.check_site(site[0], ROOT / 'nbs', screens=SCREENS)
    print(rep)
    assert rep, str(rep)
    exp = rep.expected
    assert exp and set(exp) <= set(rep.pages)
    for page, want in exp.items():   # the numbers behind the checks, for the record
        got = rep.pages[page]
        assert got['images'] >= want['images'] and (got['math'] > 0 or not want['math'])
    assert any(f.name.startswith('home-') for f in rep.screens)


def test_no_quarto_syntax_and_show_doc_tables(site):
    "show_doc output as nbdev shows it, without Quarto-only syntax: a parameter table where parameters are documented"
    bad, tables = [], 0
    for f in sorted(site[0].glob('*.html')):
        h = f.read_text(encoding='utf-8')
        text = re.sub(r'<(script|style|pre|code)\b.*?</\1>', '', h, flags=re.S)   # text, not code
        if re.search(r'\{target=|style=&quot;float|\{\.[\w-]+\}|^:::', text, re.M): bad.append(f.name)
        tables += len(re.findall(r'tag_nbdev-showdoc.*?<table', h, re.S)) > 0
    assert not bad, f'Quarto syntax left as text on {bad}'
    assert tables >= 1


def _broken_copy(site, tmp_path):
    "A copy of the site with one chapter's page removed and another chapter's figure image removed"
    exp = sitecheck.expectations(ROOT / 'nbs')
    broken = tmp_path / 'site'
    shutil.copytree(site, broken)
    with_fig = [p for p, w in exp.items() if w['hashes'] and p != 'index.html']
    assert with_fig, 'no notebook has a figure to remove'
    fig_page = with_fig[0]
    page = next(p for p in exp if p not in ('index.html', fig_page))
    (broken / page).unlink()
    cell, h = exp[fig_page]['hashes'][0]
    html = (broken / fig_page).read_text(encoding='utf-8')
    for src in re.findall(r'<img[^>]+src="([^"]+)"', html):
        f = broken / src
        if f.is_file() and hashlib.sha256(f.read_bytes()).hexdigest() == h:
            f.unlink(); break
    else: pytest.fail(f'the figure of {exp[fig_page]["notebook"]} cell {cell} is not an image file of {fig_page}')
    return broken, page, fig_page, exp[fig_page]['notebook'], cell


def test_checker_fails_on_a_missing_page_and_figure(site, tmp_path):
    "The checker can fail: a copy with a page, a figure removed and bad text added is reported, all of it"
    broken, page, fig_page, nb, cell = _broken_copy(site[0], tmp_path)
    home = broken / 'index.html'   # and text a reader must not see: a temporary path, a table left as pipes
    html = home.read_text(encoding='utf-8')
    assert html.count('</article>') == 1
    fig = max((p for p in broken.rglob('*.png') if '_static' not in p.parts), key=lambda p: p.stat().st_size)
    home.write_text(html.replace('</article>', '<p>wrote /tmp/tmpab12cd/s.csv</p>'
                                 '<p>| run | max |x - y| |\n|---|---|---|\n| a | 1 | 2 |</p>'
                                 f'<img src="{fig.relative_to(broken).as_posix()}" style="width: 120px"></article>'),
                    encoding='utf-8')
    rep = sitecheck.check_site(broken, ROOT / 'nbs', pages=['index.html', page, fig_page])
    print(rep)
    assert not rep
    text = '\n'.join(rep.problems)
    assert f'{page}: page missing' in text
    assert "index.html: a path of the build machine in the text: ['/tmp/tmpab12cd/s.csv']" in text
    assert 'index.html: a markdown table shown as raw text' in text
    assert re.search(r'index.html: a figure shown at \d+% of its size, its text too small to read', text)
    assert f'{fig_page}: image did not load' in text
    assert f'{fig_page}: the figure of {nb} cell {cell} is not on the page' in text
    assert re.search(rf'{re.escape(fig_page)}: shows \d+ loaded images, {re.escape(nb)} has \d+ \(figures missing\)', text)


def _run_nb(path):
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name='python3', resources={'metadata': {'path': str(path.parent)}}).execute()
    nbformat.write(nb, path)


def test_mini_book(tmp_path):
    "A small book made here: directives, Quarto link syntax, math, a figure and saved widget state, end to end"
    _need_browser()
    import nbformat
    from nbformat.v4 import new_notebook, new_markdown_cell as md, new_code_cell as code
    nbs = tmp_path / 'nbs'
    nbs.mkdir()
    books = {
        'index.ipynb': [md('# A mini book\n\n> for the test\n\nWith math $x^2 + y^2$ and\n\n$$\\sum_i w_i = 1$$\n\nSee `01_plot` and [the widgets](02_widgets.ipynb).')],
        '01_plot.ipynb': [md('# A plot\n\n## Part one {#sec-one .unnumbered}\n\n::: {.callout-note}\nA Quarto callout.\n:::'), code('#| hide\nimport matplotlib\nmatplotlib.use("module://matplotlib_inline.backend_inline")\nprint("HIDDEN-CELL")'),
                          code('import matplotlib.pyplot as plt\nplt.plot([1, 3, 2]);'),
                          code('#| echo: false\nprint("shown without its source")'),
                          code('#| echo: false\nfrom IPython.display import Markdown\nMarkdown("[source](https://example.com/x.py#L1){target=\\"_blank\\" style=\\"float:right\\"}\\n\\nafter")')],
        '02_widgets.ipynb': [md('# Widgets'), code('import ipywidgets as W\nW.IntSlider(value=3, description="n")')],
    }
    for name, cells in books.items():
        nb = new_notebook(cells=cells, metadata={'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}})
        nbformat.write(nb, nbs / name)
        _run_nb(nbs / name)
    assert json.loads((nbs / '02_widgets.ipynb').read_text())['metadata']['widgets'], 'nbclient saved no widget state'
    n, warnings = docs.build(tmp_path / 'site', nbs, quiet=True, work=tmp_path / 'work')
    assert n == 0, warnings.read_text()
    site = tmp_path / 'site'
    assert sorted(p.name for p in site.glob('*.html')) == ['genindex.html', 'index.html', 'plot.html', 'search.html', 'widgets.html']
    plot = (site / 'plot.html').read_text()
    assert 'HIDDEN-CELL' not in plot and 'shown without its source' in plot and 'print(&quot;shown' not in plot
    assert '{target=' not in plot and 'href="https://example.com/x.py#L1"' in plot
    assert 'admonition note' in plot and 'A Quarto callout.' in plot and ':::' not in plot and '{#sec-one' not in plot
    index = (site / 'index.html').read_text()
    assert 'href="plot.html"' in index and 'href="widgets.html"' in index
    rep = sitecheck.check_site(site, nbs, screens=tmp_path / 'screens')
    print(rep)
    assert rep, str(rep)
    assert rep.pages['widgets.html'].get('widgets', 0) >= 1 and rep.pages['plot.html']['images'] >= 1
    assert rep.pages['index.html']['math'] >= 2


def test_voila_widgets_app():
    "19_widgets as a live Voilà app: a and k sliders; moving a changes the drawing and the AUROC; server stopped"
    _need_browser()
    try: import voila  # noqa: F401
    except ImportError: _missing('the widgets app test needs voila (pip install -e ".[dev]")')
    import voila_check
    problems, facts = voila_check.check_widgets_app(ROOT / 'nbs' / '19_widgets.ipynb', screens=SCREENS)
    print({k: v for k, v in facts.items() if k != 'log_tail'})
    assert not problems, '\n'.join(problems) + '\nvoila log:\n' + facts.get('log_tail', '')
    assert facts['before']['a'] != facts['after']['a'] and facts['auroc'][0] != facts['auroc'][1]
    assert facts['stopped']


def test_voila_check_sees_errors_on_the_page():
    "The app check reports an error or stderr output, and Voilà's own timeout text, anywhere on the page"
    _need_browser()
    import voila_check
    from playwright.sync_api import sync_playwright
    stderr = '<div class="jp-RenderedText" data-mime-type="application/vnd.jupyter.stderr"><pre>{}</pre></div>'
    with sync_playwright() as pw:
        browser = sitecheck.launch(pw)
        try:
            page = browser.new_page()
            page.set_content('<div class="widget-interact">sliders</div>')
            assert voila_check.page_errors(page) == []
            page.set_content(stderr.format('ZeroDivisionError: division by zero'))
            assert voila_check.page_errors(page) == ['an error or stderr output on the page: ZeroDivisionError: division by zero']
            page.set_content('<pre>Cell execution timed out, aborting notebook execution.</pre>')
            assert voila_check.page_errors(page) == ['the page says: Cell execution timed out']
        finally:
            browser.close()


def test_show_doc_says_what_a_class_takes_and_drops_empty_columns():
    "nbdev writes `def Callback(*args, **kwargs)` for a class without __init__; the site shows `class Callback()`"
    from gradsim_nb.learner import Callback, RankDrop
    from gradsim_nb.runs import read_run
    md = docs.render_show_doc(Callback, 'Callback')
    assert '```python\nclass Callback()\n```' in md and '*args' not in md
    assert '```python\nclass RankDrop(\n' in docs.render_show_doc(RankDrop, 'RankDrop')
    # read_run's one parameter has a docment but no annotation and no default: only Details is said
    assert docs.param_table(read_run).splitlines()[:2] == ['|  | Details |', '| -- | -- |']
    assert docs.param_table(RankDrop).splitlines()[0] == '|  | Type | Default | Details |'
