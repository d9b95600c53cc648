"""``python -m embstudy.book``: build the book (:func:`embstudy.book.preview.main`)."""
from embstudy.book.preview import main

if __name__ == "__main__":
    main()
