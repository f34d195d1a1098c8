
BinputJp"mÄ