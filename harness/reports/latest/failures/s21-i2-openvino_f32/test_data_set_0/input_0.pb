
BinputJwã]?