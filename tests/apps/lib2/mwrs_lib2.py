VALUE = 'lib2-value'
