# A syntax error on line 3: the script does not load.
def mod_init():
    x = = 1
