"""Models as edgepress reads them: loading, the teacher's interface, checks of model folders and files."""
