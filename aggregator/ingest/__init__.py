"""One module per kind of input; each turns bytes into Articles."""
