from tinyfer.cli import main

main()
