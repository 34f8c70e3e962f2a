"""Datasets. Embedded ones (the helix) need no download; real ones read their original file layout."""
