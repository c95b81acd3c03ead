"""llbgen's benchmark against the Dockerfile ways of building the same images (see benchmarks/run.py)."""
