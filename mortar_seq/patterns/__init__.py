"""Template patterns in pure Python, no database: parsing and rendering, reading an
identifier back, integer formats that never write two numbers alike, check digits."""
