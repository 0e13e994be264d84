"""Build the documentation site from the notebooks in nbs/, without Quarto (which cannot be installed here).

    python tools/docs.py              # (tools/docs.sh) build _site/ from nbs/; open _site/index.html
    python tools/docs.py --out DIR    # build somewhere else

Steps:
1. `npm ci` in docs/ when docs/node_modules is missing or older than docs/package-lock.json: MathJax 3 and the
   ipywidgets embedder, pinned there, are copied into the site's static files, so no page asks another host.
2. Each notebook is copied, processed, to _sitebuild/src/ under its nbdev page name (`02_weights.ipynb` ->
   `weights`, as nbdev names `weights.html`); the notebooks in nbs/ are never written. Processing is nbdev's own
   (its `NBProcessor` with the processors of `nbdev.processors` that nbdev_docs runs before Quarto): cells marked
   `export`, `exporti`, `hide` or `default_exp` go, nbdev's `#|` lines, `hide_line` lines and `%` magics leave the
   source, ANSI codes leave stdout, `filter_stream` filters, exported definitions that no `show_doc` shows get one,
   `show_doc` input is hidden. Then what Quarto would do with the rest, for myst-nb: `include: false` cells and raw
   cells go, `echo: false` / `output: false` / `code-fold` become the cell tags remove-input / remove-output /
   hide-input, callouts become admonitions. show_doc output is rendered here from the imported library (nbdev's
   `exec_show_docs` would run the notebook's code), loses Quarto-only syntax (`{target=...}` attributes, `---`) and
   gains a parameter table and nbdev's anchor; links go to the site's own pages: backticked library names (nbdev's
   doc links), backticked notebook names (`` `02_weights` ``), `*.ipynb` links, links to doc_host, and links to
   repository files (to git_url).
3. Sphinx (myst-nb, sphinx-book-theme; configuration in docs/conf.py) renders the saved outputs, executing
   nothing, into the site, with the index as home page and the other notebooks in the sidebar in the parts of
   nbs/sidebar.yml (nbdev's custom sidebar: a section per part, with its caption), else in file-name order.
   Its warnings go to _sitebuild/warnings.txt and are counted at the end.
"""
import argparse, ast, importlib, json, os, re, shutil, subprocess, sys, time
from configparser import ConfigParser
from pathlib import Path

from execnb.nbio import dict2nb
from nbdev.process import NBProcessor, Processor, extract_directives
import nbdev.processors as nbp

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / 'docs'
BUILD = ROOT / '_sitebuild'
SITE = ROOT / '_site'


def settings():
    cfg = ConfigParser(delimiters=['='])
    cfg.read(ROOT / 'settings.ini', encoding='utf-8')
    return cfg['DEFAULT']


def page_name(nb_path):
    "nbdev's page name for a notebook: the file name without its number prefix (`05b_train.ipynb` -> `train`)"
    return re.sub(r'^\d+[a-zA-Z0-9]*_', '', Path(nb_path).name.lower()).rsplit('.', 1)[0]


def notebooks(nbs=None):
    "The book's notebooks in book order: file-name order, folders starting with '.' or '_' left out"
    nbs = Path(nbs or ROOT / settings().get('nbs_path', 'nbs'))
    return sorted(p for p in nbs.rglob('*.ipynb')
                  if not any(part.startswith(('.', '_')) for part in p.relative_to(nbs).parts))


def page_path(nb_path, nbs):
    "The page's path in the site without suffix, e.g. `weights` or `sub/topic`"
    rel = Path(nb_path).relative_to(nbs)
    return (rel.parent / page_name(rel)).as_posix()


def read_nb(path, tries=5):
    "A notebook as JSON; retried, since a notebook may be being rewritten while the site is built"
    for i in range(tries):
        try: return json.loads(Path(path).read_text(encoding='utf-8'))
        except json.JSONDecodeError as e:
            if i == tries - 1: raise SystemExit(f'{path}: not a notebook (invalid JSON: {e}); fix or remove it') from None
            time.sleep(1)


# ---- library objects, show_doc and parameter tables --------------------------------------------------------------

class Library:
    "Resolves names that a notebook documents to objects of the exported library, by importing it"
    def __init__(self, lib):
        self.lib, self.errors = lib, []
        try:
            self.modidx = importlib.import_module(f'{lib}._modidx').d['syms']
        except Exception as e:
            self.modidx = {}
            self.errors.append(f'cannot import {lib}._modidx: {e}')

    def module(self, name):
        try: return importlib.import_module(f'{self.lib}.{name}' if name else self.lib)
        except Exception as e:
            self.errors.append(f'cannot import {self.lib}.{name}: {type(e).__name__}: {e}')

    def resolve(self, name, modules):
        "The object `name` (e.g. `WeightExplorer.draw`) in the first of `modules` that has it, else in any module"
        cands = list(modules) + [m.split('.', 1)[1] for m in self.modidx if '.' in m] + ['']
        for mod in dict.fromkeys(c for c in cands if c is not None):
            m = self.module(mod)
            obj = m
            for part in name.split('.'):
                obj = getattr(obj, part, None)
                if obj is None: break
            if obj is not None and m is not None: return obj


def nbdev_anchor(name):
    "The id Quarto (pandoc) gives the heading `### name`, which nbdev's doc links point at"
    return re.sub(r'[^\w.-]', '', name.strip().lower().replace(' ', '-'))


def _cell_md(text):
    return text.replace('|', '\\|').replace('\n', ' ').strip()


def param_table(obj):
    "A markdown table of `obj`'s parameters (type, default, details from docments), or '' when it has none"
    try:
        from fastcore.docments import docments
        import inspect
        target = obj.__init__ if inspect.isclass(obj) else obj
        dm = docments(target, full=True)
    except Exception: return ''
    rows = []
    for name, info in dm.items():
        if name in ('self', 'cls'): continue
        anno, default, doc = info.get('anno'), info.get('default'), info.get('docment')
        empty = inspect.Parameter.empty
        a = '' if anno is empty or anno is None else getattr(anno, '__name__', None) or str(anno)
        a = a.replace('typing.', '')
        if name == 'return':
            if not doc and not a: continue
            name_cell = '**Returns**'
            dflt = ''
        else:
            name_cell = f'`{name}`'
            r = f'<function {default.__name__}>' if callable(default) and hasattr(default, '__name__') else repr(default)
            dflt = '' if default is empty else f'`{re.sub(r" at 0x[0-9a-f]+", "", r)}`'
        rows.append([name_cell, f'`{_cell_md(a)}`' if a else '', _cell_md(dflt), _cell_md(doc or '')])
    if all(r[0] == '**Returns**' for r in rows): return ''
    if not any(any(r[1:]) for r in rows): return ''   # nothing to say beyond the names
    # a column empty in every row (no annotations, say) is left out rather than shown blank
    keep = [0] + [i for i in (1, 2, 3) if any(r[i] for r in rows)]
    head = ['', 'Type', 'Default', 'Details']
    line = lambda cells: '| ' + ' | '.join(cells) + ' |'
    return '\n'.join([line([head[i] for i in keep]), line(['--'] * len(keep))]
                     + [line([r[i] for i in keep]) for r in rows])


def render_show_doc(obj, name):
    "show_doc's markdown for `obj`, as nbdev's exec_show_docs would have put in the cell's output"
    import inspect
    from nbdev.showdoc import BasicMarkdownRenderer
    md = BasicMarkdownRenderer(obj, name=name)._repr_markdown_()
    if inspect.isclass(obj):
        # nbdev writes a class as `def`, and one without an __init__ of its own as object's
        # `(*args, **kwargs)`: a reader sees the class and the arguments it really takes
        own_init = any('__init__' in vars(k) for k in obj.__mro__[:-1])
        md = re.sub(r'```python\ndef (\w+)\(\n    \*args, \*\*kwargs\n\):\n```' if not own_init
                    else r'```python\ndef (\w+)\(',
                    (lambda m: f'```python\nclass {m[1]}()\n```') if not own_init
                    else (lambda m: f'```python\nclass {m[1]}('), md, count=1)
    return md


_re_attr_link = re.compile(r'\[([^\]]*)\]\(([^)\s]+)\)\{([^}]*)\}')


def clean_show_doc(md, obj=None):
    "show_doc's markdown without Quarto-only syntax, with nbdev's anchor and (for `obj`) a parameter table"
    md = md.replace('\r\n', '\n')
    # `---` (a transition that docutils places badly) goes: the cell's border (docs/_static/site.css) separates
    md = re.sub(r'^\s*---\s*\n', '', md)

    def srclink(m):
        txt, url, attrs = m.groups()
        cls = ' class="showdoc-source"' if 'float:right' in attrs.replace(' ', '') else ''
        tgt = ' target="_blank" rel="noopener"' if 'target=' in attrs else ''
        return f'<a{cls} href="{url}"{tgt}>{txt}</a>'
    md = re.sub(r'(\]\([^)\s]*?)#LNone\)', r'\1)', md)      # a source link nbdev could not give a line
    md = _re_attr_link.sub(srclink, md)
    head = re.search(r'^(#+)\s+(.+?)\s*$', md, re.M)
    if head:
        anchor = nbdev_anchor(head.group(2))
        md = md[:head.start()] + f'<a id="{anchor}" class="nbdev-anchor"></a>\n\n' + md[head.start():]
    if obj is not None:
        t = param_table(obj)
        if t: md = md.rstrip() + '\n\n' + t + '\n'
    return md


def _show_doc_arg(source):
    "The name shown by a cell `show_doc(name, ...)`, or None"
    try: tree = ast.parse(source)
    except SyntaxError: return None
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and getattr(node.value.func, 'id', '') == 'show_doc' and node.value.args:
            try: return ast.unparse(node.value.args[0])
            except Exception: return None


# ---- links ---------------------------------------------------------------------------------------------------------

class Links:
    "Turns the links a notebook can hold into links of this site (or to the repository for other files)"
    def __init__(self, cfg, nbs, pages):
        self.nbs, self.pages = nbs, pages                   # pages: notebook stem -> page path
        self.anchors = {}                                   # page path -> ids of its show_doc entries
        host = (cfg.get('doc_host', '') + cfg.get('doc_baseurl', '')).rstrip('/')
        self.host_url = host
        self.host = re.compile(re.escape(host) + r'/([^)\s"#]*?)\.html') if host else None
        self.blob = f"{cfg.get('git_url', '').rstrip('/')}/blob/{cfg.get('branch', 'main')}/"
        try:
            from nbdev.doclinks import NbdevLookup
            self.lookup = NbdevLookup()
        except Exception: self.lookup = None

    def _anchor(self, page, frag):
        "`#frag`, `#` of its enclosing name (`taps` for `taps.factors`), or '' when the page documents neither"
        have = self.anchors.get(page)
        if have is None: return f'#{frag}'
        while frag and frag not in have: frag = frag.rpartition('.')[0]
        return f'#{frag}' if frag else ''

    def _target(self, url, here):
        "A site-relative target for a link in the page `here`, or None to leave it"
        if self.host and self.host.match(url):
            return self.host.sub(lambda m: m.group(1) + '.html', url)
        if re.match(r'^[a-z][\w+.-]*:', url, re.I) or url.startswith(('#', '/')): return None
        path, _, frag = url.partition('#')
        depth = '../' * here.count('/')
        if path.endswith('.ipynb'):
            stem = Path(path).stem
            if stem in self.pages: return depth + self.pages[stem] + '.html' + (f'#{frag}' if frag else '')
        for base in (self.nbs, ROOT):
            f = (base / path).resolve()
            if path and f.exists() and ROOT in f.parents:
                return self.blob + f.relative_to(ROOT).as_posix() + (f'#{frag}' if frag else '')

    def fix(self, md, here):
        "Markdown `md` of page `here` with its links made local"
        if self.lookup is not None and md:
            # nbdev's doc links, as its add_links makes them in markdown cells (it leaves fenced code alone); not
            # add_links itself, which links a markdown output line by line, fenced code too, and only when a list
            try: md = self.lookup.linkify(md)
            except Exception: pass
        parts = re.split(r'(^```.*?^```[ \t]*$)', md, flags=re.M | re.S)   # leave fenced code alone
        for i in range(0, len(parts), 2):
            s = parts[i]
            if self.lookup is not None and self.host_url:
                # a doc link to a page this site lacks goes; one to a name with no show_doc of its own goes to
                # its class's, else to the page
                s = re.sub(r'\[(`[^`\]]+`)\]\(' + re.escape(self.host_url) + r'/([^)#\s]+)\.html\)',
                           lambda m: m.group(0) if m.group(2) in self.pages.values() else m.group(1), s)
                s = re.sub(r'\[(`[^`\]]+`)\]\(' + re.escape(self.host_url) + r'/([^)#\s]+)\.html#([^)\s]+)\)',
                           lambda m: (f'[{m.group(1)}]({self.host_url}/{m.group(2)}.html'
                                      + self._anchor(m.group(2), m.group(3)) + ')')
                           if m.group(2) in self.pages.values() else m.group(1), s)
            depth = '../' * here.count('/')
            s = re.sub(r'(?<!\[)`(\w+)`(?!\]\()',
                       lambda m: f'[`{m.group(1)}`]({depth}{self.pages[m.group(1)]}.html)' if m.group(1) in self.pages else m.group(0), s)
            s = re.sub(r'\]\(([^)\s]+)\)', lambda m: '](' + (self._target(m.group(1), here) or m.group(1)) + ')', s)
            s = re.sub(r'(href|src)="([^"]+)"', lambda m: f'{m.group(1)}="' + (self._target(m.group(2), here) or m.group(2)) + '"', s)
            s = _re_attr_link.sub(lambda m: f'[{m.group(1)}]({m.group(2)})', s)   # Quarto link attributes go
            parts[i] = s
        return ''.join(parts)


# ---- Quarto markdown ----------------------------------------------------------------------------------------------

_CALLOUTS = {'note', 'tip', 'warning', 'important', 'caution'}


def quarto_md(md):
    "Quarto-only markdown as MyST: callouts as admonitions, margin notes, other fenced divs unwrapped, attributes of headings and images dropped"
    out, stack = [], []          # stack: for each open ::: fence, the line that closes it ('' when dropped)
    fence = False
    for line in md.split('\n'):
        if line.lstrip().startswith(('```', '~~~')): fence = not fence
        m = None if fence else re.match(r'^(\s*)(:{3,})\s*(\{[^}]*\}|[\w-]+)?\s*$', line)
        if m and m.group(3) and not m.group(3).startswith('{') and not stack:
            m = None             # `:::word` is not Quarto's
        if m and m.group(3):
            attrs = m.group(3)
            kind = re.search(r'\.callout-(\w+)', attrs)
            title = re.search(r'title="([^"]*)"', attrs)
            if kind and kind.group(1) in _CALLOUTS:
                if title: out += [f'{m.group(1)}{m.group(2)}{{admonition}} {title.group(1)}', f':class: {kind.group(1)}', '']
                else: out.append(f'{m.group(1)}{m.group(2)}{{{kind.group(1)}}}')
                stack.append(m.group(2)); continue
            if '.column-margin' in attrs or '.aside' in attrs:
                out.append(f'{m.group(1)}{m.group(2)}{{margin}}'); stack.append(m.group(2)); continue
            if attrs.startswith('{') or attrs.startswith('.'):
                stack.append(''); continue            # another div: its content stays, the fences go
        if m and not m.group(3) and stack:
            close = stack.pop()
            if close: out.append(m.group(1) + close)
            continue
        if not fence:
            line = re.sub(r'^(#{1,6}\s.*?)\s*\{[#.][^}]*\}\s*$', r'\1', line)           # ## Title {#sec-x .unnumbered}
            line = re.sub(r'(!\[[^\]]*\]\([^)]+\))\{[^}]*\}', r'\1', line)              # ![](x.png){width=50%}
        out.append(line)
    return '\n'.join(out)


# ---- one notebook: nbdev's processors, then what Quarto would do with what they leave, for myst-nb ---------------

class OrderShowDocs(Processor):
    "The show_doc cells nbdev's `add_show_docs` added after an exported cell, as the page means them"
    # nbdev adds a cell's show_docs in reverse order, and adds one again for a `@patch`ed method that has its own
    # show_doc (it looks for `name`, not `Class.name`): here in definition order, once, and for `exports` all before
    # the source (nbdev's `mv_exports` moves only the first); each notes the module its cell exports to
    def begin(self):
        cells, out, run = self.nb.cells, [], []
        shown = {_show_doc_arg(c.source) for c in cells if not c.get('has_sd')}
        for c in cells + [None]:
            if c is not None and c.get('has_sd'):
                if _show_doc_arg(c.source) not in shown: run.insert(0, c)
                continue
            if run:
                cell = out.pop()
                d = cell.directives_
                for s in run: s.mod_ = (d.get('export') or d.get('exports') or [None])[0]
                out += run + [cell] if 'exports' in d else [cell] + run
                run = []
            if c is not None: out.append(c)
        self.nb.cells = out


def _md_output(md, name):
    return {'output_type': 'display_data', 'metadata': {}, 'data': {'text/markdown': md, 'text/plain': name}}


class ShowDocs(Processor):
    "show_doc cells rendered from the imported library (nbdev's `exec_show_docs` would run the notebook's code)"
    def __init__(self, nb, here, lib, links, log):
        super().__init__(nb)
        self.here, self.lib, self.links, self.log, self.default_exp = here, lib, links, log, None

    def cell(self, c):
        name = _show_doc_arg(c.source) if c.cell_type == 'code' else None
        if not name: return
        c.showdoc_, added = name, c.get('has_sd')
        obj = self.lib.resolve(name, [c.get('mod_') or self.default_exp, self.default_exp])
        if added: c.execution_count = None
        if added and obj is None: return self._drop(c, name, 'not found in the library')
        if obj is not None and not any('text/markdown' in o.get('data', {}) for o in c.get('outputs', [])):
            try: c.outputs = [_md_output(render_show_doc(obj, name), name)]   # as exec_show_docs would
            except Exception as e:
                if added: return self._drop(c, name, f'{type(e).__name__}: {e}')
                self.log.append(f'{self.here}: show_doc({name}) not rendered: {type(e).__name__}: {e}')
        for o in c.get('outputs', []):
            if 'text/markdown' in o.get('data', {}):
                o['data']['text/markdown'] = clean_show_doc(''.join(o['data']['text/markdown']), obj)
                self.links.anchors.setdefault(self.here, set()).add(nbdev_anchor(name))

    def _drop(self, c, name, why):
        self.log.append(f'{self.here}: show_doc({name}) left out: {why}')
        del c['source']


def _md_cell(text, tags=()):
    return {'cell_type': 'markdown', 'metadata': {'tags': list(tags)} if tags else {}, 'source': text}


def _tag(cell, *tags):
    t = cell.setdefault('metadata', {}).setdefault('tags', [])
    for x in tags:
        if x not in t: t.append(x)


def _is(d, k, *vals): return str((d.get(k) or [''])[0]).lower() in vals


def to_myst(cell):
    "A cell as Quarto would show it, for myst-nb: Quarto's directives (nbdev leaves them) as cell tags"
    if cell.cell_type == 'raw': return cell.pop('source')          # e.g. Quarto front matter: not shown
    if cell.cell_type == 'markdown':
        if cell.source.strip(): cell.source = quarto_md(cell.source)
        else: cell.pop('source')
        return
    d = extract_directives(cell, remove=False)
    cell.source = re.sub(r'\A(\s*#\s*\|.*)+', '', cell.source).strip()
    if _is(d, 'include:', 'false', 'no', '0'): return cell.pop('source')
    if _is(d, 'echo:', 'false', 'no', '0'): _tag(cell, 'remove-input')
    if _is(d, 'output:', 'false', 'no', '0'): _tag(cell, 'remove-output')
    if _is(d, 'code-fold:', 'true', 'show'): _tag(cell, 'hide-input')        # nbdev's add_fold gives `exports` one
    if cell.get('showdoc_'): _tag(cell, 'remove-input', 'nbdev-showdoc')   # also where clean_show_doc misses it
    for o in cell.get('outputs', []):   # one string each, as the links below and myst-nb take them
        if 'text' in o: o['text'] = ''.join(o['text'])
        if 'text/markdown' in o.get('data', {}): o['data']['text/markdown'] = ''.join(o['data']['text/markdown'])
    if not cell.source and not cell.get('outputs'): cell.pop('source')


def process(nb, here, lib, links, log):
    "The notebook `nb` (JSON) processed for the page `here`"
    nb = dict2nb(nb)
    sd = ShowDocs(nb, here, lib, links, log)
    # nbdev's own processors in nbdev's order, but for the show_docs, rendered here, and what Quarto adds
    proc = NBProcessor(nb=nb, procs=[nbp.add_show_docs, OrderShowDocs, nbp.strip_ansi, nbp.hide_line,
                                     nbp.filter_stream_, nbp.rm_header_dash, nbp.clean_show_doc, nbp.rm_export,
                                     nbp.clean_magics, nbp.hide_, sd, nbp.add_fold, to_myst])
    # the module show_docs look in first: known from the directives, which NBProcessor reads before any processor
    sd.default_exp = next((c.directives_['default_exp'][0] for c in nb.cells if c.directives_.get('default_exp')),
                          None)
    proc.process()
    out = [{k: v for k, v in c.items() if k[-1] != '_' and k != 'has_sd'} for c in nb.cells]
    if not any(c['cell_type'] == 'markdown' and re.match(r'^#\s', c['source'].lstrip()) for c in out):
        out.insert(0, _md_cell(f'# {Path(here).name}'))   # every page needs a title
    nb = {k: v for k, v in nb.items() if k[-1] != '_'} | dict(cells=out, nbformat=4, nbformat_minor=5)
    keep = ('kernelspec', 'language_info', 'widgets')
    nb['metadata'] = {k: v for k, v in nb.get('metadata', {}).items() if k in keep}
    return nb


# ---- folders this tool may empty ----------------------------------------------------------------------------------

MARK = '.gradsim-site'   # written into every folder this tool fills; only such a folder (or an empty one) is ever emptied


def protected():
    "Folders never to be emptied or written into as a whole: the checkout, the notebooks, the data"
    data = [os.environ.get('GRADSIM_DATA'), str(ROOT.parent / 'shared')]
    return [ROOT, ROOT / settings().get('nbs_path', 'nbs'), ROOT / 'gradsim_nb', ROOT / 'results'] + \
           [Path(d).expanduser().resolve() for d in data if d]


def check_dir(d, arg):
    "`d`, resolved, once it is sure to be a folder this tool may empty; else stop with one line saying why not"
    d = Path(d).resolve()
    for p in protected():
        p = p.resolve()
        inside = p in d.parents and p != ROOT   # the checkout may hold the site (_site); the notebooks, library and data may not
        if d == p or d in p.parents or inside:
            raise SystemExit(f"{arg}: {d} {'is inside' if inside else 'is or holds'} {p}, which this tool never writes into; "
                             'choose a folder of its own, e.g. _site')
    if d.exists() and not d.is_dir(): raise SystemExit(f'{arg}: {d} is a file; choose a folder')
    ours = d in (SITE, BUILD, ROOT / '_site_screens')   # the default build folders (git ignores them) are this tool's
    if d.exists() and any(d.iterdir()) and not (d / MARK).exists() and not ours:
        raise SystemExit(f'{arg}: {d} already holds files this tool did not write; choose an empty or new folder, or empty it yourself')
    return d


def claim_dir(d, arg):
    "Make `d` an empty folder of this tool's, marked as such, after `check_dir`"
    d = check_dir(d, arg)
    if d.exists(): shutil.rmtree(d)
    d.mkdir(parents=True)
    (d / MARK).write_text('written by tools/docs.py: emptied and rebuilt on every build\n')
    return d


# ---- the whole site ------------------------------------------------------------------------------------------------

def vendor(dest):
    "MathJax and the widget embedder from docs/node_modules (npm ci when missing or stale) into `dest`"
    nm, lock = DOCS / 'node_modules', DOCS / 'package-lock.json'
    marker = nm / '.package-lock.json'
    if not marker.exists() or marker.stat().st_mtime < lock.stat().st_mtime:
        print('npm ci (docs/package-lock.json): MathJax and the ipywidgets embedder', flush=True)
        subprocess.run(['npm', 'ci', '--ignore-scripts', '--no-audit', '--no-fund'], cwd=DOCS, check=True)
    claim_dir(dest, 'vendor')
    mj = nm / 'mathjax' / 'es5'
    # tex-chtml.js and the components it loads on demand (fonts, TeX extensions, menu, accessibility, speech)
    (dest / 'mathjax').mkdir(parents=True)
    for p in mj.iterdir():
        if p.is_dir(): shutil.copytree(p, dest / 'mathjax' / p.name, ignore=shutil.ignore_patterns('*.map'))
        elif p.name in ('tex-chtml.js', 'core.js', 'loader.js', 'startup.js'): shutil.copy2(p, dest / 'mathjax' / p.name)
    shutil.copy2(nm / 'mathjax' / 'LICENSE', dest / 'mathjax' / 'LICENSE')
    wd = nm / '@jupyter-widgets' / 'html-manager' / 'dist'
    (dest / 'widgets').mkdir(parents=True)
    for p in wd.iterdir():   # embed.js with the chunks and fonts it loads from its own folder
        if p.is_file() and not p.name.endswith('.map') and 'amd' not in p.name: shutil.copy2(p, dest / 'widgets' / p.name)


def sidebar(nbs, nbl, pages):
    "[(caption or None, [page, ...]), ...]: the parts of nbs/sidebar.yml (nbdev's custom sidebar), else one part in file order"
    f = nbs / 'sidebar.yml'
    if not f.exists(): return [(None, [pages[q.stem] for q in nbl if pages[q.stem] != 'index'])]
    import yaml
    try: items = yaml.safe_load(f.read_text(encoding='utf-8'))['website']['sidebar']['contents']
    except Exception as e: raise SystemExit(f'{f}: not an nbdev sidebar (website: sidebar: contents: ...): {e}') from None
    parts, seen = [], []
    for it in items:
        cap, names = (it.get('section'), it.get('contents') or []) if isinstance(it, dict) else (None, [it])
        part = []
        for n in names:
            stem = Path(str(n)).stem
            if stem not in pages: raise SystemExit(f'{f}: {n} is not a notebook in {nbs}; remove it or fix the name')
            if stem in seen: raise SystemExit(f'{f}: {n} is listed twice')
            seen.append(stem)
            if pages[stem] != 'index': part.append(pages[stem])
        if part: parts.append((cap, part))
    left = [q.name for q in nbl if q.stem not in seen]
    if left: raise SystemExit(f"{f}: {', '.join(left)} in no part of the sidebar; add each to a section")
    return parts


def prepare(nbs, srcdir, log):
    "Processed copies of the notebooks (and the other files beside them) in `srcdir`; returns the page list"
    cfg = settings()
    claim_dir(srcdir, 'src')
    nbl = notebooks(nbs)
    pages = {p.stem: page_path(p, nbs) for p in nbl}
    seen = {}
    for p in nbl:
        if pages[p.stem] in seen: raise SystemExit(f'{p.name} and {seen[pages[p.stem]].name} both make the page {pages[p.stem]}.html')
        seen[pages[p.stem]] = p
    if 'index' not in pages.values(): raise SystemExit(f'no index.ipynb in {nbs}: the site needs a home page')
    lib, links = Library(cfg.get('lib_name', cfg.get('lib_path'))), Links(cfg, nbs, pages)
    for p in sorted(nbs.rglob('*')):   # figures and other files the notebooks refer to
        rel = p.relative_to(nbs)
        if p.is_file() and p.suffix != '.ipynb' and not any(x.startswith(('.', '_')) for x in rel.parts):
            (srcdir / rel).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(p, srcdir / rel)
    parts = sidebar(nbs, nbl, pages)
    order, done = [pg for _, part in parts for pg in part], {}
    for p in nbl: done[p] = process(read_nb(p), pages[p.stem], lib, links, log)
    for p in nbl:       # links once every page's anchors are known
        here, nb = pages[p.stem], done[p]
        for c in nb['cells']:
            if c['cell_type'] == 'markdown': c['source'] = links.fix(c['source'], here)
            for o in c.get('outputs', []):
                if 'text/markdown' in o.get('data', {}): o['data']['text/markdown'] = links.fix(o['data']['text/markdown'], here)
        if here == 'index':
            nb['cells'] += [_md_cell('```{toctree}\n:hidden:\n:maxdepth: 1\n' + (f':caption: {cap}\n' if cap else '')
                                     + '\n' + '\n'.join(part) + '\n```') for cap, part in parts]
        for i, c in enumerate(nb['cells']): c['id'] = f'cell-{i}'
        out = srcdir / f'{here}.ipynb'
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding='utf-8')
    log += [f'library: {e}' for e in dict.fromkeys(lib.errors)]
    return ['index'] + order


def build(out=SITE, nbs=None, quiet=False, work=BUILD):
    "Build the site from the notebooks in `nbs` into `out` (`work`: processed copies, doctrees, warnings); returns (number of Sphinx warnings, warnings file)"
    cwd = os.getcwd()
    # relative paths are the caller's, from the current folder: resolved before moving to the checkout
    out, work, nbs = Path(out).resolve(), Path(work).resolve(), nbs and Path(nbs).resolve()
    os.chdir(ROOT)              # nbdev's config (settings.ini) is found from here
    try: return _build(out, nbs, quiet, work)
    finally: os.chdir(cwd)


def _build(out, nbs, quiet, work):
    nbs = Path(nbs or ROOT / settings().get('nbs_path', 'nbs')).resolve()
    out = Path(out).resolve()
    work = check_dir(work, 'work'); check_dir(out, '--out')
    for d, arg in ((out, '--out'), (work, 'work')):
        if d == nbs or nbs in d.parents or d in nbs.parents:
            raise SystemExit(f'{arg}: {d} and the notebooks in {nbs} must not hold each other; choose a folder of its own')
    if work == out or out in work.parents or work in out.parents:
        raise SystemExit(f'--out: {out} and the work folder {work} must not hold each other; choose another --out')
    for d, arg in ((work, 'work'), (out, '--out')): claim_dir(d, arg)   # checked before anything is built
    log = []
    vendor(work / 'vendor')
    pages = prepare(nbs, work / 'src', log)
    for l in log: print('note:', l)
    warnings = work / 'warnings.txt'
    html = work / 'html'        # myst-nb writes output images beside the output folder: keep them in _sitebuild/
    if html.exists(): shutil.rmtree(html)   # inside `work`, which this tool owns
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-c', str(DOCS), '-d', str(work / 'doctrees'),
           '-w', str(warnings), '-j', '1', '-E', '--keep-going'] + (['-q'] if quiet else []) + [str(work / 'src'), str(html)]
    env = dict(os.environ, GRADSIM_SITE_VENDOR=str(work / 'vendor'))
    r = subprocess.run(cmd, env=env)
    if r.returncode: raise SystemExit(f'sphinx-build failed (exit {r.returncode})')
    claim_dir(out, '--out')     # checked again: nothing of yours appeared there during the build
    for p in html.iterdir(): shutil.move(str(p), str(out / p.name))
    (out / '.nojekyll').touch()
    text = warnings.read_text() if warnings.exists() else ''
    n = len(re.findall(r'\bWARNING\b|\bERROR\b|\bCRITICAL\b', text))
    print(f'site: {out}/index.html, {len(pages)} pages; Sphinx warnings: {n}' + (f' (listed in {warnings})' if n else ''))
    return n, warnings


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=str(SITE), help='folder for the HTML site (default: _site)')
    ap.add_argument('--nbs', default=None, help="notebook folder (default: settings.ini's nbs_path)")
    ap.add_argument('--strict', action='store_true', help='exit 1 if Sphinx gave any warning')
    ap.add_argument('-q', '--quiet', action='store_true', help="only Sphinx's warnings and the summary")
    a = ap.parse_args()
    n, _ = build(a.out, a.nbs, a.quiet)
    if a.strict and n: sys.exit(1)
