VALUE = 'pth-value'
