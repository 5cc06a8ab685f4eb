"""The network: its math, how it learns and how it writes, one character at a time.

    reference   the plain math, read it first: each cell's step forward beside its backward,
                the whole stack and its loss, float64, no speed tricks
    recurrent   the three cells on one fast time loop (checked against reference)
    embedding, dropout, loss   the other layers: forward beside backward, caches passed in
                and out, nothing changed in place that the caller passed (a backward leaves
                its cache as it found it, so it can run twice)
    model       the whole stack, fast: forward, backward, evaluation, initialisation
    optim       Adam, RMSprop, SGD, global-norm clipping, the learning-rate schedule
    score       the lane walk that scores a text (both engines use it)
    stepping    the model one character at a time; sample: drawing characters from it
"""
