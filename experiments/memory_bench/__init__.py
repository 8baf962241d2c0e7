"""The memory-instruction benchmark: chains where an earlier instruction creates the memory a later one needs.

`cases` defines the chains (four kinds: "the X you put in Y", "put it back where it was", "do that again / do
the same with X", "where did you put X?"); `runner` runs them in the kitchen with the scripted skills, once with a
knowledge store and once without it (the baseline), and scores the final instruction of each chain.
"""
