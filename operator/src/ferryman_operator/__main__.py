from ferryman_operator.main import main

main()
