"""The desktop application (PySide6). Qt is imported only inside this package."""
