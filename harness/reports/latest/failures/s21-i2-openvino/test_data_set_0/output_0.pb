
BoutputJÏsC