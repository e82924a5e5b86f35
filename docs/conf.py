"""Sphinx configuration of the pyg_schnet documentation.

Build: ``.venv/bin/sphinx-build -W -b html docs docs/_build/html``
Serve: ``.venv/bin/python -m http.server -d docs/_build/html 8000``
"""
import os
import sys

sys.path.insert(0, os.path.abspath('..'))

project = 'pyg_schnet'
author = 'the pyg_schnet developers'
copyright = '2026, the pyg_schnet developers'

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.napoleon',
    'sphinx.ext.mathjax',
    'sphinx-mathjax-offline',  # MathJax served from the site: renders offline
    'sphinx.ext.viewcode',
    'sphinx.ext.intersphinx',
    'myst_parser',
]
source_suffix = {'.rst': 'restructuredtext', '.md': 'markdown'}
myst_enable_extensions = ['dollarmath', 'colon_fence']
myst_heading_anchors = 3
exclude_patterns = ['_build', 'screenshots', 'Thumbs.db', '.DS_Store']

autodoc_member_order = 'bysource'
autodoc_typehints = 'none'  # the docstrings say the types and units
# Lightning's docstrings (inherited by overridden hooks) use directives
# this site does not load.
autodoc_inherit_docstrings = False
autodoc_default_options = {'members': True, 'show-inheritance': False,
                           'undoc-members': False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# Without the network, intersphinx has no inventories; links to torch/PyG
# objects then stay plain text.
intersphinx_mapping = {}
nitpicky = False

html_theme = 'furo'
html_title = 'pyg_schnet'
html_static_path = []
