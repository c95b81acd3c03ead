from llbgen.cli.main import main

main()
