from dataroom.review.server import main

main()
