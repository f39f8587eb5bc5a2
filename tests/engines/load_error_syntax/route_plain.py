# A syntax error on line 3: the script does not load.
def ksr_request_route():
    x = = 1
