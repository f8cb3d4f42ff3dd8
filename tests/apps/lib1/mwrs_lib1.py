VALUE = 'lib1-value'
