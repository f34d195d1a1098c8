
BoutputJ ø¡
šD¿?ëSÚ‚¦?äíê-ðft?Œ>Nk²?