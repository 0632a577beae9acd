"""Write README.md from nbs/index.ipynb without quarto (`nbdev_readme` needs it).

Markdown cells are copied as they are; code cells become fenced Python blocks, with their saved
text output after them; cells marked `#| hide` are left out. `--check` exits 1 if README.md differs.
"""
import json, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
HEADER = '<!-- Generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, then run `make readme`. -->\n\n'

def _src(cell):
    s = cell['source']
    return ''.join(s) if isinstance(s, list) else s

def render(nb_path=root/'nbs'/'index.ipynb') -> str:
    parts = []
    for cell in json.loads(Path(nb_path).read_text(encoding='utf-8'))['cells']:
        src = _src(cell).strip('\n')
        lines = src.splitlines()
        if any(l.strip().replace(' ', '') in ('#|hide', '#|include:false') for l in lines): continue
        if cell['cell_type'] == 'markdown': parts.append(src)
        elif cell['cell_type'] == 'code':
            code = '\n'.join(l for l in lines if not l.startswith('#|')).strip('\n')
            if code: parts.append(f'```python\n{code}\n```')
            outs = [''.join(o.get('text', '')) for o in cell.get('outputs', []) if o.get('output_type') == 'stream']
            outs += [''.join(o['data']['text/plain']) for o in cell.get('outputs', [])
                     if 'text/plain' in o.get('data', {})]
            if ''.join(outs).strip(): parts.append('```\n' + '\n'.join(o.rstrip('\n') for o in outs) + '\n```')
    return HEADER + '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text, readme = render(), root/'README.md'
    if '--check' in sys.argv[1:]:
        if readme.read_text(encoding='utf-8') != text:
            sys.exit('README.md is out of date with nbs/index.ipynb: run `make readme` and commit it.')
    else: readme.write_text(text, encoding='utf-8')
