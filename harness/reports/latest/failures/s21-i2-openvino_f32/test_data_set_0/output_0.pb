
BoutputJf¿