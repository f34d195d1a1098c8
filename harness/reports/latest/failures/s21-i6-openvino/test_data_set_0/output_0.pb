
BoutputJΎÿΏΔ‘>tq…Ύηκ=ΏD$>