module example.com/deleteproducts

go 1.19
