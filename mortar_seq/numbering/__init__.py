"""Numbers given as rows are written: column defaults at flush, and numbering at commit."""
