"""Write README.md from nbs/index.ipynb (nbdev_readme needs Quarto, which cannot be installed here).

    python tools/readme.py           # rewrite README.md
    python tools/readme.py --check   # exit 1 if README.md is out of step with the notebook
Markdown cells are copied as they are, code cells become ```python blocks, each followed by its committed text output
(printed lines and the cell's value) so a reader sees the result; images are left out."""
import json, sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]


def text_output(o):
    "The text a reader sees for one output: printed lines, or the cell's value as text; nothing for images alone"
    if o.get('output_type') == 'stream': return ''.join(o['text'])
    return ''.join(o.get('data', {}).get('text/plain', [])) + '\n' if o.get('output_type') == 'execute_result' else ''


def render(nb_path=root / 'nbs' / 'index.ipynb'):
    cells = json.loads(nb_path.read_text())['cells']
    parts = []
    for c in cells:
        src = ''.join(c['source']).strip()
        if not src or src.startswith('#| hide'): continue
        parts.append(src if c['cell_type'] == 'markdown' else f'```python\n{src}\n```')
        out = ''.join(text_output(o) for o in c.get('outputs', [])).strip('\n')
        if out: parts.append(f'```\n{out}\n```')
    return '\n\n'.join(parts) + '\n'


if __name__ == '__main__':
    text, readme = render(), root / 'README.md'
    if '--check' in sys.argv:
        if not readme.exists() or readme.read_text() != text:
            sys.exit('README.md is out of step with nbs/index.ipynb: run python tools/readme.py and commit the result')
    else: readme.write_text(text)
