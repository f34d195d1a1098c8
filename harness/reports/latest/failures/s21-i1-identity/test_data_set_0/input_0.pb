
BinputJP§xº