
BoutputJƒÕˆ¾