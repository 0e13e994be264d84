"""Sphinx configuration of the documentation site; build it with `bash tools/docs.sh` (tools/docs.py), which
processes copies of the notebooks into _sitebuild/src/ and runs Sphinx with this folder as configuration folder.
nbdev_docs (Quarto) ignores this folder, so where Quarto is installed it keeps working from settings.ini."""
import os
from configparser import ConfigParser
from pathlib import Path

_root = Path(__file__).resolve().parents[1]
_cfg = ConfigParser(delimiters=['='])
_cfg.read(_root / 'settings.ini', encoding='utf-8')
_cfg = _cfg['DEFAULT']
# MathJax and the ipywidgets embedder, copied by tools/docs.py from docs/node_modules (docs/package-lock.json)
_vendor = os.environ.get('GRADSIM_SITE_VENDOR', str(_root / '_sitebuild' / 'vendor'))

project = _cfg['title']
author = _cfg['author']
copyright = _cfg['copyright']
release = version = _cfg['version']
root_doc = 'index'

extensions = ['myst_nb']
myst_enable_extensions = ['dollarmath', 'amsmath', 'colon_fence', 'deflist', 'html_image']
myst_dmath_double_inline = True
myst_all_links_external = True          # tools/docs.py already made every link point where it should

nb_execution_mode = 'off'                # the site shows the outputs saved in the notebooks; it runs nothing
nb_render_markdown_format = 'myst'       # show_doc's parameter tables, math in markdown outputs
nb_merge_streams = True
# saved widget state renders with the vendored embedder; a third-party widget module would be asked of widgets/cdn/
# on this site (and fail the browser check) rather than of a CDN
nb_ipywidgets_js = {'widgets/embed.js': {'data-jupyter-widgets-cdn': 'widgets/cdn/'}}

html_theme = 'sphinx_book_theme'
html_title = f"{_cfg['title']}"
html_static_path = ['_static', _vendor]
html_css_files = ['site.css']
# before MathJax and the widget embedder: gives MathJax 3 the MathJax 2 call the embedder makes (see the file)
html_js_files = [('mathjax2_hub.js', {'priority': 100})]
html_copy_source = True
html_sourcelink_suffix = ''
html_last_updated_fmt = None
mathjax_path = 'mathjax/tex-chtml.js'
html_theme_options = {
    'repository_url': _cfg['git_url'],
    'repository_branch': _cfg.get('branch', 'main'),
    'path_to_docs': _cfg.get('nbs_path', 'nbs'),
    'use_repository_button': True,
    'use_download_button': True,
    'use_fullscreen_button': False,
    'home_page_in_toc': True,
    'show_toc_level': 2,
    'navigation_with_keys': False,
    # no right-hand contents column: the article gets its width, so that a 100-character code line and a
    # figure drawn 6.5 to 7 inches wide are shown whole at 1280 px (the page's contents stay in the header's menu)
    'secondary_sidebar_items': [],
}
html_context = {'default_mode': 'light'}   # the theme logs a console error on a first visit without a saved mode
