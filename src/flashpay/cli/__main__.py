from flashpay.cli.main import main

main()
