from vae_lab.report.cli import main

main()
