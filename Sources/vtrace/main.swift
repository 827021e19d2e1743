print("vtrace")
