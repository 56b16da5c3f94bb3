from dataroom.cli import main

main()
