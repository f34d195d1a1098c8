
BinputJdÓr¿