from cryptowire.cli import main

main()
