
BoutputJô‘R: