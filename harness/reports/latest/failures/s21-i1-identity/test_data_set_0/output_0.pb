
BoutputJah9D