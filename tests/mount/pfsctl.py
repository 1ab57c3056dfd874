"""The control directory (MOUNT/.pressurefs) as the Python tests use it:
one write() per value, the way `echo VALUE > FILE` does it, and whole reads."""
import os


class Ctl:
    def __init__(self, mnt):
        self.dir = os.path.join(mnt, ".pressurefs")

    def write(self, name, value):
        fd = os.open(os.path.join(self.dir, name), os.O_WRONLY)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)

    def read(self, name):
        with open(os.path.join(self.dir, name)) as f:
            return f.read()
